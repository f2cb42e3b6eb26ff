import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from progress_lines import epoch_at_least, start_with_stderr, wait_for_line

from engine import load_experiment, load_run
from engine.errors import ConfigError, RunFileError, TrainingError
from engine.events import Cancelled, CancelToken
from engine.storage.run import load_checkpoint, load_state_file
from engine.training import train

ROOT = Path(__file__).parents[1]


def _weights(path, epoch="final"):
    return load_run(path).state_dict(epoch)


def test_run_file_records_everything(trained_run):
    run = load_run(trained_run)
    assert run.epochs == [0, 1, 2, 3, 4] and run.final_epoch == 4 and run.status == "complete"
    for name in ("train_loss", "train_acc", "test_loss", "test_acc", "gen_error", "param_norm", "lr", "seconds"):
        assert run.metrics[name].shape == (5,), name
    assert run.metrics["test_precision"].shape == (5, 10)
    assert run.metrics["test_acc"][-1] > 0.7 > run.metrics["test_acc"][0]
    np.testing.assert_allclose(run.metrics["gen_error"], run.metrics["train_acc"] - run.metrics["test_acc"])
    assert run.bias["kind"] == "mislabel" and len(run.bias["indices"]) == len(run.bias["new_labels"]) > 100
    assert run.attrs["torch_version"] == torch.__version__ and run.attrs["losslab_version"]
    x, y = run.tensors("train")
    assert len(x) == 600 and not torch.equal(y[run.bias["indices"]], torch.as_tensor(run.bias["original_labels"]))
    model = run.model("final")
    xt, yt = run.tensors("test")
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
    assert accuracy == pytest.approx(run.metrics["test_acc"][-1])
    assert not torch.equal(run.state_dict(0)["layers.0.weight"] if "layers.0.weight" in run.state_dict(0)
                           else next(iter(run.state_dict(0).values())), next(iter(run.state_dict().values())))


def test_same_seed_gives_bit_identical_weights(tmp_path, quick_config):
    cfg = quick_config()
    a, b = train(cfg, tmp_path / "a.h5"), train(cfg, tmp_path / "b.h5")
    for key, value in _weights(a).items():
        assert torch.equal(value, _weights(b)[key]), key
    c = train(quick_config(seed=1), tmp_path / "c.h5")
    assert any(not torch.equal(v, _weights(c)[k]) for k, v in _weights(a).items())


def test_cancel_then_resume_equals_uninterrupted(tmp_path, quick_config):
    cfg = quick_config(train={"epochs": 4, "schedule": "cosine"}, data={"augment": False})
    reference = train(cfg, tmp_path / "ref.h5")
    cancel = CancelToken()

    def stop_in_epoch_three(event):
        if event.payload.get("epoch") == 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        train(cfg, tmp_path / "cut.h5", on_event=stop_in_epoch_three, cancel=cancel)
    assert load_run(tmp_path / "cut.h5").epochs == [0, 1, 2]
    resumed = train(cfg, tmp_path / "cut.h5", resume=True)
    for key, value in _weights(reference).items():
        assert torch.equal(value, _weights(resumed)[key]), key
    np.testing.assert_array_equal(load_run(reference).metrics["test_loss"], load_run(resumed).metrics["test_loss"])


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    toml = tmp_path / "exp.toml"
    toml.write_text(
        'name = "kill"\n[data]\nsource = "digits"\ntrain_limit = 500\n[model]\narch = "resnet20"\n'
        '[train]\nepochs = 10\nbatch_size = 64\nthreads = 1\nlr = 0.01\n'
    )
    out = tmp_path / "run.h5"
    proc, lines = start_with_stderr([sys.executable, "-m", "engine", "train", str(toml), "--out", str(out)], ROOT)
    try:
        wait_for_line(lines, epoch_at_least(2))
        assert proc.poll() is None, "the training ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    before = load_run(out)
    assert 2 <= before.final_epoch < 10 and before.status.startswith("interrupted")  # its process is gone
    result = subprocess.run([sys.executable, "-m", "engine", "train", str(toml), "--out", str(out), "--resume"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    after = load_run(out)
    assert after.epochs == list(range(11)) and after.status == "complete"
    reference = train(load_experiment(toml), tmp_path / "reference.h5")
    for key, value in _weights(reference).items():
        assert torch.equal(value, after.state_dict()[key]), key
    np.testing.assert_array_equal(load_run(reference).metrics["test_loss"], after.metrics["test_loss"])


def test_nan_loss_stops_with_a_message_and_keeps_last_good_checkpoint(tmp_path, quick_config):
    cfg = quick_config(train={"lr": 10.0, "momentum": 0.9, "epochs": 30}, model={"hidden": [256, 256]},
                       data={"normalize": "none"})
    with pytest.raises(TrainingError, match="became nan.*last good checkpoint"):
        train(cfg, tmp_path / "nan.h5")
    run = load_run(tmp_path / "nan.h5")
    assert run.status.startswith("failed")
    assert all(torch.isfinite(v).all() for v in run.state_dict("final").values())


def test_existing_file_is_not_overwritten_silently(tmp_path, quick_config, trained_run):
    with pytest.raises(RunFileError, match="already exists"):
        train(quick_config(), trained_run)
    with pytest.raises(RunFileError, match="different experiment"):
        train(quick_config(), trained_run, resume=True)


def test_resume_compares_settings_not_text(tmp_path, quick_config):
    """A run written before a setting existed resumes when that setting keeps its default; a
    changed setting is named with both values."""
    cfg = quick_config(train={"epochs": 2})
    out = train(cfg, tmp_path / "r.h5")
    with h5py.File(out, "a") as f:  # as an older LossLab wrote it: no data.split_seed
        text = f.attrs["config_toml"]
        assert "split_seed = -1" in text
        f.attrs["config_toml"] = "\n".join(line for line in text.splitlines() if "split_seed" not in line)
    assert train(cfg, out, resume=True) == out
    with pytest.raises(RunFileError, match=r"different experiment \(train\.lr: 0\.05 -> 0\.1\)"):
        train(quick_config(train={"epochs": 2, "lr": 0.1}), out, resume=True)


def test_corrupt_and_foreign_checkpoints_are_refused(tmp_path, trained_run):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all")
    with pytest.raises(RunFileError, match="not a readable HDF5"):
        load_run(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, foreign)
    model = load_run(trained_run).build_model()
    with pytest.raises(RunFileError, match="does not fit the model"):
        load_checkpoint(model, load_state_file(foreign), str(foreign))
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"w": torch.zeros(1), "f": os.getcwd}, unsafe)
    with pytest.raises(RunFileError, match="not a safe PyTorch state dict"):
        load_state_file(unsafe)


def test_distance_regulariser_takes_snapshots_and_records_ensemble(tmp_path, quick_config):
    cfg = quick_config(train={"epochs": 5, "distance": {"strength": 5.0, "sigma": 1.0, "start_epoch": 2, "every": 2}})
    run = load_run(train(cfg, tmp_path / "dist.h5"))
    with h5py.File(run.path) as f:
        assert list(f["distance"].attrs["epochs"]) == [2, 4]
    assert np.isnan(run.metrics["ensemble_test_acc"][1]) and run.metrics["ensemble_test_acc"][-1] > 0.5
    plain = load_run(train(quick_config(train={"epochs": 5}), tmp_path / "plain.h5"))
    moved = [float(torch.dist(run.state_dict(5)[k], run.state_dict(4)[k])) for k in run.state_dict(4)]
    still = [float(torch.dist(plain.state_dict(5)[k], plain.state_dict(4)[k])) for k in plain.state_dict(4)]
    assert sum(moved) > sum(still)


@pytest.mark.parametrize(("schedule", "expected_last_lr"), [
    ("milestones", 0.05 * 0.1 * 0.1), ("step", 0.05 * 0.1), ("cosine", 0.05 * (1 + np.cos(3 * np.pi / 4)) / 2),
    ("warm_restarts", 0.025),
])
def test_schedules(tmp_path, quick_config, schedule, expected_last_lr):
    cfg = quick_config(train={"epochs": 4, "schedule": schedule, "milestones": [1, 2], "step_size": 2,
                              "restart_period": 2})
    lrs = load_run(train(cfg, tmp_path / "s.h5")).metrics["lr"]
    assert lrs[-1] == pytest.approx(expected_last_lr, abs=1e-9)


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_losses_and_optimisers_train(tmp_path, quick_config, loss, optimizer):
    lr = 0.01 if optimizer != "sgd" else 0.1
    cfg = quick_config(train={"loss": loss, "optimizer": optimizer, "lr": lr, "nesterov": True, "epochs": 2})
    run = load_run(train(cfg, tmp_path / "l.h5"))
    assert run.metrics["test_acc"][-1] > run.metrics["test_acc"][0]


def test_regression_with_mae(tmp_path, quick_config):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    w = rng.normal(size=6).astype(np.float32)
    path = tmp_path / "reg.npz"
    np.savez(path, x_train=x[:150], y_train=x[:150] @ w, x_test=x[150:], y_test=x[150:] @ w)
    cfg = quick_config(data={"source": "tensors", "root": str(path), "train_limit": 0, "test_limit": 0},
                       train={"loss": "mae", "optimizer": "adam", "lr": 0.01, "epochs": 5},
                       model={"taaf": True, "activation": "tanh"})
    run = load_run(train(cfg, tmp_path / "reg.h5"))
    assert run.metrics["test_loss"][-1] < run.metrics["test_loss"][0]
    assert np.isnan(run.metrics["test_acc"][-1])


def test_user_model_runs_need_permission_to_rebuild(tmp_path, quick_config):
    module = tmp_path / "my_net.py"
    module.write_text(
        "import torch\n\nclass Net(torch.nn.Module):\n"
        "    def __init__(self, hidden=16):\n        super().__init__()\n"
        "        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(),"
        " torch.nn.Linear(hidden, 10))\n\n    def forward(self, x):\n        return self.body(x)\n"
    )
    cfg = quick_config(model={"arch": "user", "user": f"{module}:Net", "user_kwargs": {"hidden": 8}})
    out = train(cfg, tmp_path / "user.h5")
    with pytest.raises(ConfigError, match="explicit permission to run that Python file"):
        load_run(out).model()
    model = load_run(out, allow_user_code=True).model()
    assert model.body[1].out_features == 8
