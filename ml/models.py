"""The model registry (ModelVersion, TrainingRun) arrives with the retraining loop; see DESIGN.md."""
