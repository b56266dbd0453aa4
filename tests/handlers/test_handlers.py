from __future__ import annotations

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events

from monai_scribble.errors import UserError
from monai_scribble.handlers import BestModelSaver, FinalModelSaver, StageSwitchHandler, TrainingCheckpointHandler
from monai_scribble.pseudo_labels import EMAPseudoLabelHandler, PseudoLabelConfig, PseudoLabelStore
from tests.pseudo_labels.test_refresh import ConstantNet


@pytest.mark.parametrize("warmup, expected", [(2, ["warmup", "warmup", "main", "main"]), (0, ["main"] * 4), (-1, ["warmup"] * 4)])
def test_stage_switch(warmup, expected):
    engine = Engine(lambda e, b: None)
    StageSwitchHandler(warmup).attach(engine)
    stages = []
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: stages.append(e.state.stage))
    engine.run([0], max_epochs=4)
    assert stages == expected


def test_training_checkpoint_roundtrip_keeps_configured_max_epochs(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = Engine(lambda e, b: optimizer.step())
    handler = TrainingCheckpointHandler(tmp_path, {"network": model, "optimizer": optimizer, "trainer": engine, "none": None})
    handler.attach(engine)
    engine.run([0, 1], max_epochs=3)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["checkpoint_epoch=3.pt"]  # n_saved=1, no temporary files left
    weights = model.weight.detach().clone()
    resumed_model = torch.nn.Linear(2, 2)
    resumed_engine = Engine(lambda e, b: None)
    resumed_engine.state.max_epochs = 5
    TrainingCheckpointHandler(tmp_path, {"network": resumed_model, "optimizer": torch.optim.SGD(resumed_model.parameters(), lr=0.1),
                                         "trainer": resumed_engine}).load(tmp_path / files[0])
    assert torch.equal(resumed_model.weight, weights)
    assert (resumed_engine.state.epoch, resumed_engine.state.max_epochs) == (3, 5)


@pytest.mark.parametrize("interval, saved", [(1, [5, 6, 7]), (3, [3, 6, 7]), (10, [7])])
def test_checkpoint_interval_keeps_the_ema_generation_the_checkpoint_recorded(tmp_path, interval, saved):
    store = PseudoLabelStore(tmp_path / "ema", {"a": (32, 32)})
    ema = EMAPseudoLabelHandler(store, [{"id": "a", "image": torch.zeros(3, 32, 32)}], ConstantNet(), PseudoLabelConfig(momentum=0.5, period=1))
    engine = Engine(lambda e, b: None)
    ema.attach(engine)
    checkpoints = TrainingCheckpointHandler(tmp_path / "ckpt", {"trainer": engine, "ema": ema}, n_saved=3, interval=interval)
    checkpoints.attach(engine)
    on_disk = {}
    engine.add_event_handler(Events.EPOCH_COMPLETED, lambda e: on_disk.__setitem__(
        e.state.epoch, sorted(int(d.name) for d in store.root.iterdir() if d.is_dir())))  # fmt: skip
    engine.run([0], max_epochs=7)
    assert [int(p.stem.split("=")[1]) for p in sorted(checkpoints._saved())] == saved  # every interval-th epoch and the last
    for epoch, generations in on_disk.items():
        # the refresh of epoch e runs before its checkpoint: it keeps what the checkpoint of an earlier epoch recorded
        last_checkpoint = max((s for s in range(1, epoch) if s % interval == 0), default=epoch - 1)
        assert generations == sorted({epoch, last_checkpoint})
    resumed = EMAPseudoLabelHandler(store, [], ConstantNet(), PseudoLabelConfig(momentum=0.5, period=1))
    TrainingCheckpointHandler(tmp_path / "ckpt", {"trainer": Engine(lambda e, b: None), "ema": resumed}).load(checkpoints.path(saved[-1]))
    assert store.state == {"generation": 7, "updates": 7}  # resumes from the newest checkpoint


def _run_with_checkpoints(tmp_path, epochs):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    engine = Engine(lambda e, b: optimizer.step())
    handler = TrainingCheckpointHandler(tmp_path, {"network": model, "optimizer": optimizer, "trainer": engine})
    handler.attach(engine)
    engine.run([0, 1], max_epochs=epochs)
    return engine, handler


@pytest.mark.parametrize("failure", ["disk full", "killed"])
def test_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    engine, handler = _run_with_checkpoints(tmp_path, 2)
    previous = (tmp_path / "checkpoint_epoch=2.pt").read_bytes()

    def partial_save(obj, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(previous[:100])  # a few bytes reach the disk, then the write fails
        if failure == "disk full":
            raise OSError(28, "No space left on device")
        raise KeyboardInterrupt  # stands for the process being stopped in the middle of the write

    monkeypatch.setattr(torch, "save", partial_save)
    engine.state.epoch = 3
    with pytest.raises(UserError if failure == "disk full" else KeyboardInterrupt) as err:
        handler(engine)
    if failure == "disk full":
        assert str(err.value).startswith(f"{tmp_path / 'checkpoint_epoch=3.pt'}: could not write the training checkpoint (No space left on device)")
        assert "the previous one (checkpoint_epoch=2.pt) is intact" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=2.pt"]  # old one intact, no temporary file
    assert (tmp_path / "checkpoint_epoch=2.pt").read_bytes() == previous


def test_leftover_of_a_killed_write_is_removed_and_never_resumed_from(tmp_path):
    (tmp_path / ".checkpoint_epoch=2.pt.abc123.tmp.pt").write_bytes(b"")  # SIGKILL during the write leaves this
    _run_with_checkpoints(tmp_path, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_epoch=1.pt"]


def test_random_states_roundtrip_reproduces_every_generator(tmp_path):
    from monai.transforms import Compose, RandFlipd, RandGaussianNoised

    from monai_scribble.handlers import RandomStates
    from monai_scribble.losses import MultiscaleContrastiveLoss

    transforms = Compose([RandFlipd("x", prob=0.5), RandGaussianNoised("x", prob=1.0)]).set_random_state(seed=1)
    sampler = MultiscaleContrastiveLoss(seed=3)
    sampler._generator(torch.device("cpu"))
    states = RandomStates(transforms, [sampler, None])

    def draw():
        out = transforms({"x": torch.zeros(1, 4, 4)})["x"]
        return (out, torch.rand(3), np.random.rand(3), __import__("random").random(),
                torch.randperm(8, generator=sampler._generator(torch.device("cpu"))))  # fmt: skip

    saved = states.state_dict()
    torch.save(saved, tmp_path / "rng.pt")
    first = draw()
    states.load_state_dict(torch.load(tmp_path / "rng.pt", weights_only=True))
    second = draw()
    for a, b in zip(first, second):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert len(saved["transforms"]) >= 3  # Compose, flip and noise each own a RandomState


def test_best_model_saver(tmp_path):
    net = torch.nn.Linear(2, 1)
    saver = BestModelSaver(tmp_path, net, "val_iou", metadata={"dataset": "synthetic", "method": "s2l"})
    evaluator = Engine(lambda e, b: None)
    evaluator.state.epoch = 7
    saver.attach(evaluator)
    for value, saved in ((0.5, True), (0.4, False), (float("nan"), False), (0.7, True)):
        with torch.no_grad():
            net.weight.fill_(value)
        evaluator.state.metrics = {"val_iou": value}
        before = (tmp_path / "model.pt").stat().st_mtime_ns if (tmp_path / "model.pt").exists() else None
        saver(evaluator)
        after = (tmp_path / "model.pt").stat().st_mtime_ns
        assert (after != before) == saved
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert list(state) == ["model", "metadata"] and float(state["model"]["weight"][0, 0]) == pytest.approx(0.7)
    assert state["metadata"] == {"dataset": "synthetic", "method": "s2l", "metric": "val_iou", "value": 0.7, "epoch": 7}
    assert saver.state_dict() == {"best": 0.7}


@pytest.mark.parametrize("validated, saved_at_end", [(None, True), (float("nan"), True), (0.6, False)])
def test_final_model_saver_only_when_validation_gave_no_best_model(tmp_path, validated, saved_at_end):
    net = torch.nn.Linear(2, 1)
    best = BestModelSaver(tmp_path, net, "val_iou")
    if validated is not None:
        evaluator = Engine(lambda e, b: None)
        evaluator.state.metrics = {"val_iou": validated}
        best(evaluator)
    with torch.no_grad():
        net.weight.fill_(3.0)  # trained further after the last validation
    trainer = Engine(lambda e, b: None)
    FinalModelSaver(best).attach(trainer)
    trainer.run([0], max_epochs=1)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert (float(state["model"]["weight"][0, 0]) == 3.0) == saved_at_end
