"""System checks: refuse bad configuration at start-up with a message that says what to fix."""
