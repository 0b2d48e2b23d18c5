"""Project pages. Every read of patient data goes through :class:`rtbank.projects.access.Access`."""
