"""The bundle in a real MONAI Label server: info, inference, scribble labels, training from scribbles.

Needs the separate MONAI Label environment made by ``scripts/monailabel_venv.sh`` (CI makes it before the
tests; ``$MONAI_SCRIBBLE_MONAILABEL_VENV`` or ``~/.cache/monai_scribble/monailabel-venv``), with its own
torch + torchvision. The app is made and the real server started as the docs say, with that environment's
python and ``monailabel`` (its ``bin`` first on PATH, as ``source <venv>/bin/activate`` does; nothing
added to PYTHONPATH), on 127.0.0.1 on a free port. Every request has a timeout and the server is always
stopped.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from monai.bundle import ConfigWorkflow
from PIL import Image

from monai_scribble.data.data_root import default_data_root
from monai_scribble.data.image_io import image_size, read_instance_label
from monai_scribble.data.scribbles import ScribbleFormat, image_rng, synthesize_scribble, write_scribble
from tests.conftest import file_digest

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("MONAI_SCRIBBLE_MONAILABEL_VENV", Path.home() / ".cache" / "monai_scribble" / "monailabel-venv"))
MODEL = "scribble_cell_segmentation"
START_TIMEOUT_S, REQUEST_TIMEOUT_S = 180, 300

pytestmark = pytest.mark.skipif(
    not (VENV / "bin" / "monailabel").is_file(),
    reason=f"MONAI Label environment not found at {VENV}: run `bash scripts/monailabel_venv.sh` (CI does)",
)


def activated_env() -> dict:
    """The environment of a shell after ``source <venv>/bin/activate``; PYTHONPATH and PYTHONHOME dropped."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("OMP_NUM_THREADS", "2")
    return {**env, "VIRTUAL_ENV": str(VENV), "PATH": f"{VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, str]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), ""


def multipart(field: str, path: Path) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # a stale or broken environment (e.g. made by an older script) fails here with the reason, not in the server log
    check = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "monailabel_venv.sh"), "--check"], cwd=REPO_ROOT,
                           env={**os.environ, "MONAI_SCRIBBLE_MONAILABEL_VENV": str(VENV)}, capture_output=True, text=True, timeout=300)  # fmt: skip
    if check.returncode != 0:
        pytest.fail(f"MONAI Label environment {VENV} is not usable:\n{check.stdout}{check.stderr}")
    root = tmp_path_factory.mktemp("monailabel")
    # a small supervised model so that inference finds nuclei
    train_dir = root / "train"
    workflow = ConfigWorkflow(
        config_file=str(REPO_ROOT / "bundles" / MODEL / "configs" / "train.json"), workflow_type="train", run_id="training",
        output_dir=str(train_dir), ckpt_dir=str(train_dir / "models"), method="supervised", num_synthetic_images=10,
        max_epochs=6, val_interval=2, batch_size=4,
    )  # fmt: skip
    workflow.initialize()
    workflow.run()
    studies = root / "studies"
    studies.mkdir()
    synthetic = sorted((train_dir / "synthetic" / "images").glob("*.png"))[:4]  # two get labels, two stay unlabelled
    for path in synthetic:
        shutil.copy2(path, studies / path.name)
    tiles = sorted((default_data_root() / "monuseg" / "test" / "images").glob("*.tif"))
    if tiles:
        shutil.copy2(tiles[0], studies / tiles[0].name)
    app = root / "app"
    env = activated_env()
    subprocess.run([str(VENV / "bin" / "python"), "-m", "monai_scribble.monailabel_app", "--app_dir", str(app), "--model", str(train_dir / "models" / "model.pt"),
                    "--set", "warmup_epochs=0", "--set", "ema_period=1", "--set", "crop_size=64", "--set", "batch_size=2",
                    # the 6-epoch model's nucleus probabilities lie in 0.47-0.55: at the default 0.8 every pixel is
                    # unconfident and scribble_next would rank a tie; at 0.52 the shares differ (0.31-0.94)
                    "--set", "ema_threshold=0.52"],
                   check=True, cwd=REPO_ROOT, env=env, timeout=120)  # fmt: skip
    port = free_port()
    log = open(root / "server.log", "w")
    process = subprocess.Popen(
        [str(VENV / "bin" / "monailabel"), "start_server", "--app", str(app), "--studies", str(studies), "--host", "127.0.0.1",
         "--port", str(port), "--conf", "models", MODEL, "--conf", "zoo_source", "local", "--conf", "sam2", "false"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"MONAI Label server exited with {process.returncode}: {(root / 'server.log').read_text()[-3000:]}")
            try:
                if request(f"{base}/info/")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"MONAI Label server did not answer within {START_TIMEOUT_S} s: {(root / 'server.log').read_text()[-3000:]}")
            time.sleep(2)
        yield {"base": base, "app": app, "studies": studies, "synthetic": synthetic[:2], "unlabelled": synthetic[2:],
               "tile": tiles[0] if tiles else None, "train_dir": train_dir}  # fmt: skip
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)
        log.close()


def test_info_lists_a_2d_nucleus_model(server):
    status, body, _ = request(f"{server['base']}/info/")
    info = json.loads(body)
    assert status == 200
    assert info["models"][MODEL]["dimension"] == 2
    assert info["models"][MODEL]["labels"] == {"nucleus": 1}
    assert MODEL in info["trainers"]


def test_infer_returns_a_label_image_of_the_input_size(server):
    images = list(server["synthetic"]) + ([server["tile"]] if server["tile"] else [])
    for path in images:
        image_id = path.name.split(".")[0]
        status, body, content_type = request(f"{server['base']}/infer/{MODEL}?image={image_id}&output=image", method="POST")
        assert status == 200 and content_type.startswith("image/"), body[:500]  # png for png input, tiff for tif
        labels = np.array(Image.open(io.BytesIO(body)))
        assert labels.shape == image_size(path), path.name
        if path in server["synthetic"]:
            assert labels.max() > 0, f"no nucleus found in {path.name}"


def scribble_next(server, unlabelled: list[Path]) -> tuple[dict, dict]:
    """``POST /activelearning/scribble_next``'s answer, and the ranking computed here from the deployed model and thresholds."""
    from monai_scribble.pseudo_labels import ModelFileRanking, PseudoLabelConfig
    from monai_scribble.utils.precision import default_amp_dtype

    status, body, _ = request(f"{server['base']}/activelearning/scribble_next", "POST", b"{}", {"Content-Type": "application/json"})
    assert status == 200, body[:1000]
    deployed = server["app"] / "model" / MODEL
    train = json.loads((deployed / "configs" / "train.json").read_text())
    config = PseudoLabelConfig(threshold=train["ema_threshold"], background_threshold=train["ema_background_threshold"])
    expected = {row["id"]: row for row in ModelFileRanking(config, amp_dtype=default_amp_dtype("cpu"))(
        deployed / "models" / "model.pt", {path.name.split(".")[0]: str(path) for path in unlabelled})}  # fmt: skip
    return json.loads(body), expected


def assert_least_sure(answer: dict, expected: dict) -> None:
    # this environment's torch and the server's agree to rounding, so ties are compared with a tolerance
    assert answer["id"] in expected, f"{answer['id']} is not an unlabelled image ({sorted(expected)})"
    assert answer["path"].endswith(Path(expected[answer["id"]]["image"]).name)
    assert answer["unconfident_share"] == pytest.approx(expected[answer["id"]]["unconfident_share"], abs=0.01)
    assert answer["unconfident_share"] >= max(row["unconfident_share"] for row in expected.values()) - 0.01


def test_scribble_next_strategy_ranks_the_unlabelled_images_by_the_deployed_model(server):
    status, body, _ = request(f"{server['base']}/info/")
    assert "scribble_next" in json.loads(body)["strategies"]
    answer, expected = scribble_next(server, list(server["synthetic"]) + list(server["unlabelled"]) + ([server["tile"]] if server["tile"] else []))
    assert len({round(row["unconfident_share"], 2) for row in expected.values()}) > 1, expected  # a ranking, not a tie
    assert_least_sure(answer, expected)


def test_scribbles_saved_in_monailabel_train_the_model(server):
    for path in server["synthetic"]:
        image_id = path.stem
        instances = read_instance_label(server["train_dir"] / "synthetic" / "labels" / path.name)
        scribble = write_scribble(server["app"].parent / f"{image_id}_scribble.png",
                                  synthesize_scribble(instances, 0.5, image_rng(0, image_id)), ScribbleFormat.ZERO_UNLABELED)  # fmt: skip
        body, content_type = multipart("label", scribble)
        status, answer, _ = request(f"{server['base']}/datastore/label?image={image_id}&tag=final", "PUT", body, {"Content-Type": content_type})
        assert status == 200, answer[:500]
    model = server["app"] / "model" / MODEL / "models" / "model.pt"
    before = file_digest(model)
    payload = json.dumps({"max_epochs": 1, "device": "cpu"}).encode()
    status, answer, _ = request(f"{server['base']}/train/{MODEL}?run_sync=true", "POST", payload, {"Content-Type": "application/json"})
    assert status == 200, answer[:1000]
    assert file_digest(model) != before
    runs = list((server["app"] / "model" / MODEL / "output" / "monailabel").iterdir())
    assert len(runs) == 1 and (runs[0] / "ema" / "current.json").is_file()


def test_scribble_next_leaves_labelled_images_out_and_follows_the_retrained_model(server):
    # after the training request above: the two labelled images are out of the pool, the rewritten model.pt ranks the rest
    answer, expected = scribble_next(server, list(server["unlabelled"]) + ([server["tile"]] if server["tile"] else []))
    assert_least_sure(answer, expected)


def test_scribble_next_without_a_model_gives_the_first_unlabelled_image(tmp_path):
    # the strategy on MONAI Label's own LocalDatastore, in the MONAI Label environment: no model.pt deployed yet
    studies = tmp_path / "studies"
    studies.mkdir()
    for name in ("b_image", "a_image"):
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(studies / f"{name}.png")
    bundle = tmp_path / "bundle"
    shutil.copytree(REPO_ROOT / "bundles" / MODEL / "configs", bundle / "configs")
    script = (
        "import json, sys\n"
        "from monailabel.datastore.local import LocalDatastore\n"
        "from monai_scribble.monailabel_strategy import ScribbleNext\n"
        "datastore = LocalDatastore(sys.argv[1], extensions=['*.png'])\n"
        "print(json.dumps(ScribbleNext(sys.argv[2])({'strategy': 'scribble_next'}, datastore)))\n"
    )
    result = subprocess.run([str(VENV / "bin" / "python"), "-c", script, str(studies), str(bundle)], cwd=tmp_path, env=activated_env(),
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"id": "a_image"}
    assert "no model deployed or trained yet" in result.stderr
