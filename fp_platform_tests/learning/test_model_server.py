"""`fp-platform serve` answers SageMaker's /ping and /invocations with the bundle's model, and scores each
vector exactly as DF's model step does (the same model document, the same loader)."""

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from fp_platform.learning import model_server, models
from fp_platform.learning.sagemaker_config import JSON_LINES
from fp_platform.substrate.bundle_models import parse_model

FEATURES = ("amount", "terminal_risk_7d", "customer_tx_count_1d")


@pytest.fixture(scope="module", params=["lightgbm", "random_forest", "logistic"])
def served(request):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(400, len(FEATURES)))
    y = (x[:, 0] + x[:, 1] + rng.normal(scale=0.5, size=400) > 1).astype(int)
    params = {
        "lightgbm": {"n_estimators": 10, "n_jobs": 1, "verbose": -1},
        "random_forest": {"n_estimators": 5, "random_state": 0},
    }
    fitted = models.fit(request.param, params.get(request.param, {}), x, y, FEATURES)
    ref, body = "s3://b/bundles/x/1/model.json", orjson.dumps(fitted.document())
    vectors = [dict(zip(FEATURES, map(float, row), strict=True)) for row in x[:50]]
    vectors[3]["terminal_risk_7d"] = None  # a feature DF serves as missing
    dfs_model = parse_model(ref, body)  # what DF's model step loads and calls `score` on, one event at a time
    expected = [dfs_model.score(v) for v in vectors]
    return TestClient(model_server.create_app(parse_model(ref, body), ref)), vectors, expected


def test_ping_answers_once_the_model_is_loaded(served):
    client, _, _ = served
    assert client.get("/ping").status_code == 200


def test_invocations_score_as_df_does(served):
    client, vectors, expected = served
    r = client.post(
        "/invocations", content=orjson.dumps({"instances": vectors}), headers={"content-type": "application/json"}
    )
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["scores"], expected, rtol=1e-9, atol=1e-12)


def test_batch_transform_lines_get_a_score_per_line(served):
    client, vectors, expected = served
    body = b"\n".join(orjson.dumps(v) for v in vectors) + b"\n"
    r = client.post("/invocations", content=body, headers={"content-type": JSON_LINES})
    assert r.status_code == 200 and r.headers["content-type"].startswith(JSON_LINES)
    np.testing.assert_allclose([float(line) for line in r.text.splitlines()], expected, rtol=1e-9, atol=1e-12)


def test_the_amount_ratios_are_derived_as_df_derives_them():
    """A bundle trained on the ratios scores the same through `serve` as through DF's model step, which sees
    `contracts.features.model_values` of the vector and the event: the server derives them, a client need not."""
    from fp_platform.contracts.features import model_values

    features = ("amount", "customer_avg_amount_7d", "amount_to_customer_avg_7d")
    rng = np.random.default_rng(3)
    amount, avg = rng.uniform(1, 200, 300), rng.uniform(1, 60, 300)
    x = np.column_stack([amount, avg, amount / avg])
    y = (amount / avg > 3).astype(int)
    fitted = models.fit("lightgbm", {"n_estimators": 10, "n_jobs": 1, "verbose": -1}, x, y, features)
    ref, body = "s3://b/bundles/r/1/model.json", orjson.dumps(fitted.document())
    pairs = [({"customer_avg_amount_7d": float(b)}, float(a)) for a, b in zip(amount[:20], avg[:20], strict=True)]
    expected = [parse_model(ref, body).score(model_values(v, {"amount": a})) for v, a in pairs]
    client = TestClient(model_server.create_app(parse_model(ref, body), ref))
    sent = [{**v, "amount": a} for v, a in pairs]  # the vector and the amount, no ratios
    r = client.post("/invocations", content=orjson.dumps(sent), headers={"content-type": "application/json"})
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["scores"], expected, rtol=1e-9, atol=1e-12)
    assert len(set(np.round(expected, 6))) > 1  # the ratio moves the score: the test can tell


@pytest.mark.parametrize("body", [b"not json", b'{"instances": 3}', b'[{"amount": "ten"}]'])
def test_a_body_that_is_not_vectors_is_a_400_that_says_why(served, body):
    client, _, _ = served
    r = client.post("/invocations", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]


def test_serve_without_a_model_refuses_to_start(monkeypatch):
    from fp_platform.substrate.bundle_models import ModelUnavailable

    monkeypatch.delenv(model_server.MODEL_REF_ENV, raising=False)
    with pytest.raises(ModelUnavailable, match="FP_BUNDLE_MODEL_REF"):
        model_server.serve()
