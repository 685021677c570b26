from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    label = "ml"
    verbose_name = "Models and training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from labeling.selectors import AI_OUTPUT_PROVIDERS
        from ml.selectors import ai_output_for_case

        if ai_output_for_case not in AI_OUTPUT_PROVIDERS:
            AI_OUTPUT_PROVIDERS.append(ai_output_for_case)
