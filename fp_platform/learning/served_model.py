"""The MLflow model MF logs is the bundle's model document, scored by DF's own code: an MLflow client gets
exactly what DF serves, whatever kind the selection chose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from fp_platform.substrate.bundle_models import parse_model


class ServedModel(mlflow.pyfunc.PythonModel):
    """Loads the model document (artifact `document`) with `bundle_models.parse_model`; `predict` takes a frame
    of served fields and returns the fraud score of each row."""

    def load_context(self, context: Any) -> None:
        path = Path(context.artifacts["document"])
        self._model = parse_model(path.as_uri(), path.read_bytes())

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> list[float]:
        rows = [{k: (None if pd.isna(v) else v) for k, v in r.items()} for r in model_input.to_dict("records")]
        return self._model.score_many(rows)
