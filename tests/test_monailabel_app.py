"""monai_scribble.monailabel_app: the deployed bundle copy (the server itself: tests/monailabel)."""

from __future__ import annotations

import json

import pytest

from monai_scribble import monailabel_app


@pytest.fixture()
def fake_sample_app(tmp_path, monkeypatch):
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "main.py").write_text("# monaibundle app\n")
    monkeypatch.setattr(monailabel_app, "sample_app_dir", lambda: sample)
    return sample


def test_deployed_copy_is_set_up_for_scribbles(tmp_path, fake_sample_app):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    monailabel_app.main(["--app_dir", str(tmp_path / "app"), "--model", str(model), "--set", "warmup_epochs=3", "--set", "method=s2l"])
    deployed = tmp_path / "app" / "model" / "scribble_cell_segmentation"
    assert (deployed / "LICENSE").is_file()
    # the sample's main.py is kept as a module; main.py extends its app with the scribble_next strategy
    assert (tmp_path / "app" / "monaibundle_main.py").read_text() == "# monaibundle app\n"
    assert (tmp_path / "app" / "main.py").read_text() == monailabel_app.APP_MAIN
    assert (deployed / "models" / "model.pt").read_bytes() == b"weights"
    train = json.loads((deployed / "configs" / "train.json").read_text())
    assert (train["label_kind"], train["warmup_epochs"], train["method"]) == ("scribble_zero_unlabeled", 3, "s2l")
    assert train["ckpt_dir"] == "$os.path.join(@bundle_root, 'models')"  # training requests update the served model
    assert json.loads((deployed / "configs" / "inference.json").read_text())["monailabel_layout"] is True


def test_making_the_app_again_refreshes_it(tmp_path, fake_sample_app):
    for _ in range(2):
        monailabel_app.make_app(tmp_path / "app")
    assert (tmp_path / "app" / "monaibundle_main.py").read_text() == "# monaibundle app\n"
    assert (tmp_path / "app" / "main.py").read_text() == monailabel_app.APP_MAIN
    compile(monailabel_app.APP_MAIN, "main.py", "exec")


def test_errors(tmp_path, fake_sample_app, capsys):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        monailabel_app.make_app(tmp_path / "app", tmp_path / "missing.pt")
    with pytest.raises(SystemExit):
        monailabel_app.main(["--app_dir", str(tmp_path / "app"), "--set", "warmup"])
    assert "--set expects ID=VALUE" in capsys.readouterr().err


def test_inference_layout_transform():
    import torch

    from monai_scribble.inference.io import MonaiLabelLayoutd

    pred = torch.arange(6).reshape(1, 2, 3)
    assert MonaiLabelLayoutd("pred")({"pred": pred})["pred"].shape == (3, 2)
    assert MonaiLabelLayoutd("pred", enabled=False)({"pred": pred})["pred"].shape == (1, 2, 3)
    with pytest.raises(ValueError, match=r"expected a \(1, H, W\) map under 'pred', got shape \(2, 3\)"):
        MonaiLabelLayoutd("pred")({"pred": pred[0]})
