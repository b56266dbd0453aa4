"""Aperio XML parsing and polygon rasterisation (monai_scribble.data.monuseg_xml), on hand-made XML."""

from __future__ import annotations

import numpy as np
import pytest

from monai_scribble.errors import DataError
from monai_scribble.data.monuseg_xml import (
    RasterStats,
    parse_aperio_xml,
    polygons_to_instance_map,
    xml_to_instance_map,
)


def square(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def aperio_xml(*layers: list[list[tuple[float, float]]]) -> str:
    """An Aperio ImageScope file with one <Annotation> per layer, one <Region> per vertex list."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Annotations MicronsPerPixel="0.252700">']
    region_id = 1
    for a, regions in enumerate(layers, start=1):
        parts.append(f'<Annotation Id="{a}" Type="4"><Attributes/><Regions>')
        parts.append('<RegionAttributeHeaders><AttributeHeader Id="9999" Name="Region"/></RegionAttributeHeaders>')
        for vertices in regions:
            parts.append(f'<Region Id="{region_id}" Type="0"><Attributes/><Vertices>')
            parts.extend(f'<Vertex X="{x}" Y="{y}" Z="0"/>' for x, y in vertices)
            parts.append("</Vertices></Region>")
            region_id += 1
        parts.append("</Regions><Plots/></Annotation>")
    parts.append("</Annotations>")
    return "\n".join(parts)


def write_xml(tmp_path, text: str, name: str = "tile.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def pixel_counts(label: np.ndarray, n: int) -> list[int]:
    return np.bincount(label.ravel(), minlength=n + 1)[1:].tolist()


# ---------------------------------------------------------------------------------------------- parsing


def test_parse_two_squares(tmp_path):
    path = write_xml(tmp_path, aperio_xml([square(1.5, 1.5, 4.5, 4.5), square(10, 2, 14.25, 7)]))
    polygons = parse_aperio_xml(path)
    assert len(polygons) == 2
    for p in polygons:
        assert p.shape == (4, 2) and p.dtype == np.float64
    np.testing.assert_allclose(polygons[1][:, 0], [10, 14.25, 14.25, 10])  # column 0 is X
    np.testing.assert_allclose(polygons[1][:, 1], [2, 2, 7, 7])  # column 1 is Y


def test_parse_all_annotation_layers_in_document_order(tmp_path):
    path = write_xml(tmp_path, aperio_xml([square(0, 0, 2, 2)], [square(5, 5, 8, 8), [(1, 1)]]))
    polygons = parse_aperio_xml(path)
    assert [p[0].tolist() for p in polygons] == [[0, 0], [5, 5], [1, 1]]


def test_parse_empty_annotation_file(tmp_path):
    path = write_xml(tmp_path, aperio_xml([]))
    assert parse_aperio_xml(path) == []
    label = xml_to_instance_map(path, (5, 6))
    assert label.shape == (5, 6) and label.dtype == np.int32 and not label.any()


@pytest.mark.parametrize(
    "text, problem",
    [
        ('<Annotations><Annotation><Regions><Region Id="1"><Vertices><Vertex X="1" Y="2"/>', "malformed XML"),
        ("not xml at all", "malformed XML"),
        ('<Annotations><Region Id="7"><Vertices><Vertex Y="2"/></Vertices></Region></Annotations>', "no X attribute"),
        ('<Annotations><Region Id="7"><Vertices><Vertex X="1"/></Vertices></Region></Annotations>', "no Y attribute"),
        ('<Annotations><Region Id="7"><Vertices><Vertex X="abc" Y="2"/></Vertices></Region></Annotations>',
         "non-numeric X coordinate 'abc'"),
        ('<Annotations><Region Id="7"><Vertices><Vertex X="1" Y="nan"/></Vertices></Region></Annotations>',
         "non-finite Y coordinate"),
        ('<Annotations><Region Id="7"><Vertices/></Region></Annotations>', "has no <Vertex>"),
        ("<html><body/></html>", "not an Aperio annotation file"),
    ],
)
def test_parse_errors_name_the_file_and_problem(tmp_path, text, problem):
    path = write_xml(tmp_path, text, name="broken.xml")
    with pytest.raises(DataError) as info:
        parse_aperio_xml(path)
    assert str(info.value).startswith(str(path))
    assert info.value.path == str(path)
    assert problem in str(info.value)


def test_parse_error_names_the_region(tmp_path):
    good = square(1, 1, 3, 3)
    text = aperio_xml([good, good]).replace('<Vertex X="3" Y="3" Z="0"/>', '<Vertex X="3" Y="oops" Z="0"/>', 2)
    path = write_xml(tmp_path, text)
    with pytest.raises(DataError, match=r"region #1 \(Id=1\), vertex #3: non-numeric Y"):
        parse_aperio_xml(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="annotation file not found") as info:
        xml_to_instance_map(tmp_path / "absent.xml", (4, 4))
    assert str(info.value).startswith(str(tmp_path / "absent.xml"))


# ---------------------------------------------------------------------------------------- rasterisation


def test_two_squares_get_ids_in_region_order(tmp_path):
    path = write_xml(tmp_path, aperio_xml([square(1.5, 1.5, 4.5, 4.5), square(6.5, 0.5, 8.5, 5.5)]))
    label = xml_to_instance_map(path, (10, 12))
    assert label.dtype == np.int32 and label.shape == (10, 12)
    expected = np.zeros((10, 12), np.int32)
    expected[2:5, 2:5] = 1  # pixel centres 2, 3, 4 inside [1.5, 4.5]
    expected[1:6, 7:9] = 2  # rows 1..5, columns 7..8
    np.testing.assert_array_equal(label, expected)


def test_overlap_goes_to_the_smallest_polygon_in_any_order():
    big = np.array(square(1.5, 1.5, 10.5, 10.5))  # 9x9 = 81 pixels
    small = np.array(square(6.5, 6.5, 12.5, 12.5))  # 6x6 = 36 pixels, 4x4 = 16 shared with big
    label, stats = polygons_to_instance_map([big, small], (15, 15), return_stats=True)
    assert pixel_counts(label, 2) == [81 - 16, 36]
    assert (label[7:11, 7:11] == 2).all()
    assert stats == RasterStats(n_regions=2, n_fallback=0, n_relocated=0, n_overlap_pixels=16)
    swapped = polygons_to_instance_map([small, big], (15, 15))
    np.testing.assert_array_equal(swapped, np.choose(label, [0, 2, 1]))  # same partition, ids follow order


def test_nested_small_nucleus_survives_inside_a_large_one():
    outer = np.array(square(0.5, 0.5, 20.5, 20.5))  # 20x20
    inner = np.array(square(8.5, 8.5, 11.5, 11.5))  # 3x3
    for polygons, inner_id in (([outer, inner], 2), ([inner, outer], 1)):
        label = polygons_to_instance_map(polygons, (25, 25))
        assert (label[9:12, 9:12] == inner_id).all()
        assert np.count_nonzero(label == inner_id) == 9
        assert np.count_nonzero(label == 3 - inner_id) == 400 - 9


def test_equal_sizes_go_to_the_earlier_region():
    a = np.array(square(0.5, 0.5, 4.5, 4.5))  # 4x4
    b = np.array(square(2.5, 0.5, 6.5, 4.5))  # 4x4, shares columns 3..4
    label = polygons_to_instance_map([a, b], (6, 8))
    assert (label[1:5, 3:5] == 1).all()
    assert pixel_counts(label, 2) == [16, 8]


def test_out_of_bounds_vertices_are_clipped_to_the_image():
    partly_out = np.array(square(-5.5, -5.5, 3.5, 3.5))  # inside the image: rows/columns 0..3
    far_right = np.array(square(5.5, 20.5, 100.5, 200.5))  # rows 21..200 fill, columns 6..9 inside
    label = polygons_to_instance_map([partly_out, far_right], (30, 10))
    assert (label[0:4, 0:4] == 1).all() and np.count_nonzero(label == 1) == 16
    assert (label[21:30, 6:10] == 2).all() and np.count_nonzero(label == 2) == 9 * 4


def test_region_entirely_outside_gets_its_clipped_centroid():
    outside = np.array(square(50, 2, 60, 4))  # centroid (55, 3) -> column clipped to 9
    label, stats = polygons_to_instance_map([outside], (8, 10), return_stats=True)
    assert np.argwhere(label == 1).tolist() == [[3, 9]]
    assert stats.n_fallback == 1


def test_degenerate_regions_are_still_counted(tmp_path):
    regions = [
        square(1.5, 1.5, 4.5, 4.5),
        [(10.0, 2.0), (12.0, 6.0)],  # 2 vertices -> centroid (11, 4)
        [(7.4, 8.6)],  # 1 vertex -> (7, 9)
        [(2.0, 8.3), (3.0, 8.3), (4.0, 8.3)],  # collinear, off the pixel centres -> (3, 8)
        [(14.2, 14.2), (14.4, 14.2), (14.3, 14.4)],  # sub-pixel triangle with no pixel centre inside
    ]
    path = write_xml(tmp_path, aperio_xml(regions))
    label, stats = xml_to_instance_map(path, (16, 16), return_stats=True)
    assert np.unique(label[label > 0]).tolist() == [1, 2, 3, 4, 5]
    assert np.argwhere(label == 2).tolist() == [[4, 11]]
    assert np.argwhere(label == 3).tolist() == [[9, 7]]
    assert np.argwhere(label == 4).tolist() == [[8, 3]]
    assert np.argwhere(label == 5).tolist() == [[14, 14]]
    assert stats.n_fallback == 4 and stats.n_relocated == 0


def test_fully_covered_duplicate_takes_a_pixel_from_its_twin():
    a = np.array(square(0.5, 0.5, 4.5, 4.5))  # 16 pixels, centroid (2.5, 2.5) -> pixel (3, 3)
    label, stats = polygons_to_instance_map([a, a.copy()], (6, 6), return_stats=True)
    assert np.argwhere(label == 2).tolist() == [[3, 3]]
    assert pixel_counts(label, 2) == [15, 1]
    assert stats.n_fallback == 1 and stats.n_overlap_pixels == 16


def test_colliding_fallbacks_are_moved_to_the_nearest_free_pixel():
    point = np.array([[5.0, 5.0]])
    label, stats = polygons_to_instance_map([point, point, point], (11, 11), return_stats=True)
    assert label[5, 5] == 1
    assert sorted(map(tuple, np.argwhere(label > 0).tolist())) == [(4, 5), (5, 4), (5, 5)]
    assert label[4, 5] == 2 and label[5, 4] == 3  # nearest, then row-major
    assert stats.n_fallback == 3 and stats.n_relocated == 2


def test_instance_count_equals_region_count_on_random_polygons():
    rng = np.random.default_rng(0)
    polygons = []
    for _ in range(300):
        centre = rng.uniform(-5, 45, size=2)
        k = int(rng.integers(1, 8))
        polygons.append(centre + rng.normal(scale=rng.uniform(0.1, 6), size=(k, 2)))
    label = polygons_to_instance_map(polygons, (40, 40))
    assert np.unique(label[label > 0]).tolist() == list(range(1, 301))


def test_too_many_regions_for_the_image():
    with pytest.raises(ValueError, match="cannot each get a pixel"):
        polygons_to_instance_map([np.array([[0.0, 0.0]])] * 5, (2, 2))


@pytest.mark.parametrize("bad", [np.zeros((0, 2)), np.zeros((3, 3)), np.array([[0.0, np.inf], [1, 1], [2, 0]])])
def test_malformed_polygons_raise(bad):
    with pytest.raises(ValueError, match="polygon 0"):
        polygons_to_instance_map([bad], (4, 4))


def test_bad_shape_raises():
    with pytest.raises(ValueError, match="shape"):
        polygons_to_instance_map([], (0, 4))
