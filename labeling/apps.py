from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # connects the receivers that drop the DICOMweb endpoint's cached decisions (logout, token, roles) in
        # every process that can make such a change: web, workers, management commands
        from labeling.api import authentication, dicomweb_auth  # noqa: F401 - token revocation, throttles
