"""ONNX export (fastdnn.export, fastdnn export): onnxruntime's probabilities and labels equal fastdnn's.

Tolerance: the exported graph computes the same products and activations as the kernels in another order
(onnxruntime's GEMM, its own exp and tanh): a few ulp per value; over two hidden layers that stays far
inside the issue's bounds, 1e-12 relative in float64 and 1e-6 in float32 (max |a - b| / max |b|).
"""

import os
import signal

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx: pip install 'fastdnn[onnx]' (a test extra)")
ort = pytest.importorskip("onnxruntime", reason="the export is checked with onnxruntime (a test extra)")

from fastdnn import DNNClassifier  # noqa: E402
from fastdnn import io as fio  # noqa: E402

TOLERANCE = {"float64": 1e-12, "float32": 1e-6}


def data(n_classes, labels="int", m=150, n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    index = np.argmax(X[:, :n_classes] + 0.2 * rng.standard_normal((m, n_classes)), axis=1)
    if n_classes == 2:
        index = (X[:, 0] + 0.2 * rng.standard_normal(m) > 0).astype(int)
    names = np.array(["cat", "dog", "emu", "fox"])
    return X, (names[index] if labels == "text" else index * 3 + 1)


def served(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    return session.run(None, {"X": X})


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("n_classes, output", [(2, "auto"), (3, "auto"), (2, "softmax")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_onnxruntime_serves_what_fastdnn_predicts(tmp_path, activation, n_classes, output, dtype):
    X, y = data(n_classes, labels="text" if activation == "tanh" else "int")
    est = DNNClassifier(hidden_layer_sizes=(8, 5), activation=activation, output=output, max_iter=15, random_state=0,
                        dtype=dtype).fit(X, y)
    path = tmp_path / "m.onnx"
    model = est.to_onnx(path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    Xd = X.astype(dtype)
    labels, P = served(path, Xd[:1])  # a batch of one
    labels, P = served(path, Xd)  # and of any size
    assert P.dtype == np.dtype(dtype) and P.shape == (len(X), n_classes)
    assert relative(P, est.predict_proba(X)) < TOLERANCE[dtype]
    assert np.array_equal(labels.astype(est.classes_.dtype), est.predict(X))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["fastdnn_version"] and '"activation": "' + activation + '"' in props["options"]


def test_a_transfer_learning_model_exports_its_frozen_and_trained_layers(tmp_path):
    X, y = data(2)
    base = DNNClassifier(hidden_layer_sizes=(8, 5), max_iter=10, random_state=0).fit(X, y)
    X3, y3 = data(3, seed=1)
    est = DNNClassifier.from_pretrained(base, keep_layers=1, hidden_layer_sizes=(8, 4), max_iter=10,
                                        random_state=0).fit(X3, y3)
    est.to_onnx(tmp_path / "t.onnx")
    labels, P = served(tmp_path / "t.onnx", X3)
    assert relative(P, est.predict_proba(X3)) < TOLERANCE["float64"]
    assert np.array_equal(labels, est.predict(X3))


def test_the_command_exports_a_saved_model_and_refuses_what_is_not_one(tmp_path, capsys):
    from fastdnn import cli

    X, y = data(2)
    est = DNNClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    fio.save_model(est, tmp_path / "m.npz")
    assert cli.main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")]) == 0
    out, _ = capsys.readouterr()
    assert f"to {tmp_path / 'm.onnx'}" in out
    labels, P = served(tmp_path / "m.onnx", X)
    assert relative(P, est.predict_proba(X)) < TOLERANCE["float64"]
    np.savez(tmp_path / "data.npz", X=X, y=y)
    assert cli.main(["export", str(tmp_path / "data.npz"), str(tmp_path / "d.onnx")]) == 1
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "data.npz: is an .npz archive but not a fastdnn model" in err
    assert not (tmp_path / "d.onnx").exists()


def test_boolean_classes_come_back_as_booleans(tmp_path):
    X, y = data(2)
    est = DNNClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y > 2)
    est.to_onnx(tmp_path / "b.onnx")
    labels, _ = served(tmp_path / "b.onnx", X)
    assert labels.dtype == np.bool_ and np.array_equal(labels, est.predict(X))


def test_an_export_removes_what_a_killed_export_of_the_same_file_left(tmp_path):
    """An export killed between writing its temporary file and renaming it leaves .OUT.onnx.*.tmp; the next
    export of OUT removes it, as train does for its model (and leaves no lock file)."""
    import subprocess
    import sys

    X, y = data(2)
    fio.save_model(DNNClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y), tmp_path / "m.npz")
    model, out = str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")
    killed = ("import os, signal, sys; from fastdnn import cli; "
              "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL); cli.main(['export', sys.argv[1], sys.argv[2]])")
    status = subprocess.run([sys.executable, "-c", killed, model, out], capture_output=True, timeout=300).returncode
    leftovers = [name for name in os.listdir(tmp_path) if name.startswith(".m.onnx.") and name.endswith(".tmp")]
    assert status == -signal.SIGKILL and len(leftovers) == 1
    from fastdnn import cli

    assert cli.main(["export", model, out]) == 0
    assert sorted(os.listdir(tmp_path)) == ["m.npz", "m.onnx"]
