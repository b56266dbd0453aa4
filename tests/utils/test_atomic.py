from __future__ import annotations

import pytest

from monai_scribble.utils.atomic import atomic_write


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    def failing_writer(tmp: str) -> None:
        open(tmp, "w").write("partial")
        raise RuntimeError("disk full")

    (tmp_path / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "keep.txt", failing_writer)
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # no temporary left behind


@pytest.mark.parametrize("name", ["new.txt", "sub/dir/new.txt", "label.nii.gz"])
def test_a_write_creates_the_folder_and_the_complete_file(tmp_path, name):
    path = atomic_write(tmp_path / name, lambda tmp: open(tmp, "w").write("done"), fsync=True)
    assert path == tmp_path / name and path.read_text() == "done"
    assert [p.name for p in path.parent.iterdir()] == [path.name]
