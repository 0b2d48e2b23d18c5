from django.apps import AppConfig


class HarvestConfig(AppConfig):
    """The harvester: sources, runs, the reference walk, manifests, statistics."""

    name = "rtbank.harvest"
    label = "harvest"
    nav_items = [("Harvest", "harvest_runs", lambda request: _site_admin(request.user))]

    def ready(self) -> None:
        from rtbank.harvest import jobs

        jobs.register()


def _site_admin(user: object) -> bool:
    from rtbank.projects.access import is_site_admin

    return is_site_admin(user)
