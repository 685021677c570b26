from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    label = "ml"
    verbose_name = "Models and training"
    default_auto_field = "django.db.models.BigAutoField"
