"""Starting weights: --init_from (fine-tuning from a model.pt) and the checks of --encoder_layout / --pretrained_weights."""

from __future__ import annotations

import pytest
import torch
from monai.bundle import ConfigWorkflow

from monai_scribble.engines.initial_weights import check_initial_weights, init_from_model
from monai_scribble.errors import ArgumentError, DataError
from monai_scribble.inference import encoder_layout_of
from monai_scribble.networks import MultiscaleUNet
from tests.engines.test_training_bundle import TINY, TRAIN_CONFIG, run_workflow


def save_model(path, network: torch.nn.Module) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": network.state_dict(), "metadata": {"dataset": "dsb_fluo"}}, path)


@pytest.mark.parametrize("layout", ["monai", "torchvision"])
def test_init_from_model_loads_every_weight(tmp_path, layout):
    torch.manual_seed(1)
    trained = MultiscaleUNet(encoder_layout=layout)
    save_model(tmp_path / "run" / "models" / "model.pt", trained)
    assert encoder_layout_of(tmp_path / "run" / "models" / "model.pt") == layout
    for source in (tmp_path / "run" / "models" / "model.pt", tmp_path / "run"):  # the file, or a training output_dir
        torch.manual_seed(2)
        network = init_from_model(MultiscaleUNet(encoder_layout=layout), source)
        for key, value in network.state_dict().items():
            assert torch.equal(value, trained.state_dict()[key]), key
    fresh = MultiscaleUNet()
    assert init_from_model(fresh, None) is fresh


def test_check_initial_weights_with_files(tmp_path):
    save_model(tmp_path / "monai.pt", MultiscaleUNet())
    save_model(tmp_path / "tv.pt", MultiscaleUNet(encoder_layout="torchvision"))
    (tmp_path / "resnet34.pth").write_bytes(b"weights")
    (tmp_path / "corrupt.pt").write_bytes(b"not a model")
    check_initial_weights("monai", None, False, tmp_path / "monai.pt")
    check_initial_weights("torchvision", tmp_path / "resnet34.pth", False, tmp_path / "tv.pt")
    check_initial_weights("torchvision", None, True, None)
    with pytest.raises(ArgumentError, match="^--init_from: .*tv.pt' holds a network with encoder_layout 'torchvision', "
                                            "this run builds 'monai'; add --encoder_layout torchvision$"):
        check_initial_weights("monai", None, False, tmp_path / "tv.pt")
    with pytest.raises(ArgumentError, match="^--pretrained_weights: holds torchvision ResNet weights, .*; add --encoder_layout torchvision$"):
        check_initial_weights("monai", tmp_path / "resnet34.pth", False, None)
    with pytest.raises(ArgumentError, match="^--pretrained: downloads torchvision's ImageNet weights, .*; add --encoder_layout torchvision$"):
        check_initial_weights("monai", None, True, None)
    with pytest.raises(DataError, match="corrupt.pt: cannot be read"):
        check_initial_weights("monai", None, False, tmp_path / "corrupt.pt")


def test_a_mismatched_model_file_names_the_layout_to_pass(tmp_path):
    from monai_scribble.inference import load_model_file

    save_model(tmp_path / "tv.pt", MultiscaleUNet(encoder_layout="torchvision"))
    with pytest.raises(DataError, match="it was trained with --encoder_layout torchvision, pass that$"):
        load_model_file(tmp_path / "tv.pt", MultiscaleUNet())


def test_bundle_training_starts_from_init_from_and_trains_on(tmp_path):
    first = run_workflow(tmp_path / "first", max_epochs=1)
    first_model = tmp_path / "first" / "models" / "model.pt"
    trained = torch.load(first_model, weights_only=True)["model"]
    settings = {**TINY, "output_dir": str(tmp_path / "second"), "ckpt_dir": str(tmp_path / "second" / "models"),
                "max_epochs": 2, "warmup_epochs": 1, "seed": 5, "init_from": str(first_model)}  # fmt: skip
    workflow = ConfigWorkflow(config_file=str(TRAIN_CONFIG), workflow_type="train", run_id="training", **settings)
    workflow.initialize()
    network = workflow.parser.get_parsed_content("network")
    for key, value in network.state_dict().items():  # before training: the first run's weights exactly
        assert torch.equal(value.cpu(), trained[key]), key
    workflow.run()
    workflow.finalize()
    assert workflow.parser.get_parsed_content("train#trainer").state.epoch == 2
    changed = [k for k, v in network.state_dict().items() if v.is_floating_point() and not torch.equal(v.cpu(), trained[k])]
    assert changed  # training went on from there
    assert (tmp_path / "second" / "models" / "model.pt").is_file()
    del first
