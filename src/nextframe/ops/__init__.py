"""The operations layer: tracking and the model registry (MLflow), serving, `nextframe
predict`, the demo page, the team server and the process helpers under them. It imports the
core (`nextframe.*`); the core never imports it (import-linter contracts in pyproject.toml)."""
