"""The manifest as arrays (RecordTable, Strings) gives back exactly the records it was made of, and the
split rule (whole groups per class, shares by largest remainder) is the one its docstrings define: checked
against the plain list, the CSV module, and a split computed here from the definition."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from video_classifier.data.manifest import VideoRecord
from video_classifier.data.records import SPLIT_NAMES, RecordTable, Strings, split_by_group
from video_classifier.data.user_videos import SPLITS, Listed, _largest_remainder, assign_splits, file_name, group_of

RECORDS = [
    VideoRecord("Jump/v_Jump_g01_c01.avi", "Jump", "train", "g01", 30, 25.0, 1.2),
    VideoRecord("Run/v_Run_g02_c01.avi", "Run", "val", "g02", 48, 29.97, 1.6016),
    VideoRecord("Ça va/é—ü.mp4", "Ça va", "test", "ça", 7, 30.0, 0.2333),  # several bytes per character
    VideoRecord("Jump/v_Jump_g03_c02.avi", "Jump", "", "g03", 0, 0.0, 0.0),  # a video to infer: no split
    VideoRecord("Run/x.avi", "Run", "extra", "", 12, 12.5, 0.96),
]


def test_strings_give_back_every_string():
    values = ["", "abc", "é—ü", "", "a,b\nc"]
    strings = Strings(values)
    assert len(strings) == 5 and [strings[i] for i in range(5)] == values
    assert strings.nbytes == sum(len(v.encode()) for v in values) + 8 * (len(values) + 1)
    taken = strings.take(np.array([4, 2, 2]))
    assert [taken[i] for i in range(len(taken))] == ["a,b\nc", "é—ü", "é—ü"]
    empty = Strings([])
    assert len(empty) == 0 and empty.nbytes == 8 and empty.buffer.dtype == np.uint8


def test_a_table_is_the_records_it_was_made_of():
    table = RecordTable.of(RECORDS)
    assert len(table) == len(RECORDS) and list(table) == RECORDS
    assert [table[i] for i in range(len(RECORDS))] == RECORDS and table[np.int64(2)] == RECORDS[2]
    assert RecordTable.of(table) is table
    assert type(table[1].frames) is int and type(table[1].fps) is float and type(table[1].duration) is float
    # labels as codes into the sorted label names; splits as codes into train, val, test, then the others sorted
    assert table.label_names == ("Jump", "Run", "Ça va") and table.labels.tolist() == [0, 1, 2, 0, 1]
    assert table.split_names == SPLIT_NAMES + ("", "extra") and table.splits.tolist() == [0, 1, 2, 3, 4]
    assert table.labels.dtype == np.int32 and table.splits.dtype == np.int16
    # frames, fps, duration and start (a segment's): four 8-byte columns
    assert table.nbytes == (table.paths.nbytes + table.groups.nbytes + 5 * 4 + 5 * 2 + 5 * 8 * 4)
    empty = RecordTable.of([])
    assert len(empty) == 0 and list(empty) == [] and empty.split_names == SPLIT_NAMES


def test_taking_slicing_and_splits_keep_the_rows():
    table = RecordTable.of(RECORDS)
    assert list(table[1:4]) == RECORDS[1:4] and list(table[::2]) == RECORDS[::2]
    assert list(table.take(np.array([4, 0]))) == [RECORDS[4], RECORDS[0]]
    for name in ("train", "val", "test", "", "extra"):
        part = table.split(name)
        assert list(part) == [r for r in RECORDS if r.split == name] and part.split_names == table.split_names


def test_a_manifest_csv_reads_back_as_its_records():
    """The CSV module writes the records (columns in another order than VideoRecord's); read_csv gives them
    back."""
    text = io.StringIO()
    columns = ["split", "duration", "path", "group", "fps", "label", "frames"]
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows({c: getattr(r, c) for c in columns} for r in RECORDS)
    assert list(RecordTable.read_csv(text.getvalue())) == RECORDS


def largest_remainder_from_definition(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Hamilton's method (ties: train, then val, then test), then the two fix-ups of _largest_remainder's
    docstring: train gets one group first, then each split with a share and none. In floats, as the
    product computes: 12 groups at 0.7 / 0.2 / 0.1 have remainders 0.39999 and 0.40000 (0.4 either,
    exactly), so val, not train, gets the twelfth."""
    exact = [n * f / sum(fractions) for f in fractions]
    counts = [int(e) for e in exact]
    for i in sorted(range(3), key=lambda i: (-(exact[i] - counts[i]), i))[: n - sum(counts)]:
        counts[i] += 1
    if n and not counts[0]:
        donor = 1 if counts[1] >= counts[2] else 2
        counts[donor], counts[0] = counts[donor] - 1, 1
    for i in (1, 2):
        if fractions[i] > 0 and not counts[i] and counts[0] > 1:
            counts[0], counts[i] = counts[0] - 1, 1
    return counts


@pytest.mark.parametrize("fractions", [(0.7, 0.2, 0.1), (0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (1, 1, 1), (0.5, 0.5, 0.0),
                                       (0.0, 0.3, 0.7), (0.1, 0.0, 0.9), (3, 2, 5)])
def test_groups_are_shared_by_largest_remainder(fractions):
    for n in range(0, 23):
        counts = _largest_remainder(n, fractions)
        assert counts == largest_remainder_from_definition(n, fractions), (n, fractions)
        assert sum(counts) == n and min(counts) >= 0


def test_small_classes_keep_a_training_group():
    assert _largest_remainder(1, (0.1, 0.0, 0.9)) == [1, 0, 0]  # test's share, but train comes first
    assert _largest_remainder(2, (0.1, 0.45, 0.45)) == [1, 0, 1]  # val (the first of the largest) gives one
    assert _largest_remainder(2, (0.8, 0.1, 0.1)) == [1, 1, 0]  # train keeps one, val gets one, test none left
    assert _largest_remainder(3, (0.8, 0.1, 0.1)) == [1, 1, 1]
    assert _largest_remainder(0, (0.7, 0.2, 0.1)) == [0, 0, 0]


def videos_by_class(seed: int, count: int, classes: int, groups: int) -> list[Listed]:
    rng = random.Random(seed)
    return [Listed(Path(f"/v/{i:04d}.mp4"), f"c{rng.randrange(classes)}", group=f"g{rng.randrange(groups)}")
            for i in range(count)]


def splits_from_definition(videos: list[Listed], fractions: tuple[float, float, float], seed: int,
                           multi_label: bool) -> dict[Path, str]:
    """assign_splits' rule, written out: per class in sorted order (multi-label: one class), its groups
    sorted, shuffled by random.Random(f"{seed}/{class}"), then cut in largest-remainder shares."""
    groups: dict[str, dict[str, list[Listed]]] = defaultdict(lambda: defaultdict(list))
    for v in videos:
        groups["all videos" if multi_label else v.label][v.group].append(v)
    out = {}
    for label in sorted(groups):
        names = sorted(groups[label])
        random.Random(f"{seed}/{label}").shuffle(names)
        bounds = np.cumsum([0, *largest_remainder_from_definition(len(names), fractions)])
        for split, (start, stop) in zip(SPLITS, zip(bounds, bounds[1:])):
            for name in names[start:stop]:
                out.update((v.path, split) for v in groups[label][name])
    return out


@pytest.mark.parametrize("multi_label", [False, True])
def test_splits_by_group_follow_the_definition_lists_and_arrays_alike(multi_label):
    videos = videos_by_class(seed=1, count=400, classes=5, groups=40)
    for v in videos:
        v.multi_label = multi_label
    for fractions, seed in (((0.7, 0.2, 0.1), 3), ((0.5, 0.25, 0.25), 11)):
        expected = splits_from_definition(videos, fractions, seed, multi_label)
        listed, short = assign_splits(videos, fractions, "", seed)
        assert listed == expected and short == []
        codes = split_by_group([v.label for v in videos], [v.group for v in videos], fractions, seed, multi_label)
        assert codes.dtype == np.int8 and [SPLITS[c] for c in codes] == [expected[v.path] for v in videos]
    # a group is in one split: per class (multi-label: over all classes)
    where = defaultdict(set)
    for v, c in zip(videos, codes):
        where[v.group if multi_label else (v.label, v.group)].add(c)
    assert all(len(s) == 1 for s in where.values())


def test_a_class_too_small_for_a_split_is_named():
    videos = [Listed(Path(f"/v/{i}.mp4"), "big", group=f"g{i}") for i in range(10)]
    videos += [Listed(Path("/v/s1.mp4"), "small", group="s"), Listed(Path("/v/s2.mp4"), "small", group="s")]
    split_of, short = assign_splits(videos, (0.6, 0.2, 0.2), "", 0)
    assert short == ["class small has 1 group(s): none left for val and test"]
    assert split_of[Path("/v/s1.mp4")] == split_of[Path("/v/s2.mp4")] == "train"
    assert sorted(split_of[v.path] for v in videos[:10]).count("train") == 6
    _, short = assign_splits(videos, (0.6, 0.4, 0.0), "", 0)  # no test share: only val is missing
    assert short == ["class small has 1 group(s): none left for val"]


def test_a_videos_group():
    """Given, else the pattern's first group on the file name (the whole match without a group), else the
    file name."""
    video = Listed("https://host/a/v_Jump_g07_c02.mp4?token=1", "Jump")
    assert file_name(video.path) == "v_Jump_g07_c02.mp4"
    assert group_of(video, r"_g(\d+)_") == "07" and group_of(video, r"g\d+") == "g07"
    assert group_of(video, r"_x(\d+)_") == "v_Jump_g07_c02.mp4" and group_of(video, "") == "v_Jump_g07_c02.mp4"
    assert group_of(Listed(Path("/d/v_Jump_g07_c02.avi"), "Jump", group="scene 3"), r"_g(\d+)_") == "scene 3"
    assert file_name(Path("/d/sub/clip.avi")) == "clip.avi" and file_name("relative/clip.avi") == "clip.avi"
    assert file_name("/cache/data-00000.arrow:12:video:folder/clip 3.mp4") == "clip 3.mp4"  # an Arrow row's name


def test_the_table_holds_numbers_as_numbers():
    """Columns of a CSV (strings) become int64 / float64 arrays: what workers share without copying."""
    text = "path,label,split,group,frames,fps,duration\na.avi,x,train,g,30,25.0,1.2\nb.avi,y,val,h,7,12.5,0.56\n"
    table = RecordTable.read_csv(text)
    assert (table.frames.dtype, table.fps.dtype, table.duration.dtype) == (np.int64, np.float64, np.float64)
    assert table.frames.tolist() == [30, 7] and table.fps.tolist() == [25.0, 12.5]
    assert table.duration.tolist() == [1.2, 0.56] and table.nbytes == table.paths.nbytes + table.groups.nbytes + \
        2 * 4 + 2 * 2 + 2 * 8 * 4


def test_an_empty_table_has_no_rows_labels_or_codes():
    empty = RecordTable.of([])
    assert empty.label_names == () and empty.labels.size == 0 and empty.splits.size == 0
    assert list(RecordTable.of(RECORDS).take([])) == [] and list(RecordTable.of(RECORDS)[5:]) == []


def test_split_by_group_is_single_label_unless_told():
    labels, groups = ["a", "b"] * 6, [f"g{i % 3}" for i in range(12)]  # groups shared across classes
    assert split_by_group(labels, groups, (0.34, 0.33, 0.33), 0).tolist() == \
        split_by_group(labels, groups, (0.34, 0.33, 0.33), 0, multi_label=False).tolist()
    assert split_by_group(labels, groups, (0.34, 0.33, 0.33), 0).tolist() != \
        split_by_group(labels, groups, (0.34, 0.33, 0.33), 0, multi_label=True).tolist()


def test_assign_splits_takes_groups_from_the_pattern():
    """UCF101's names: clips of one group (_gNN_) go to one split."""
    videos = [Listed(Path(f"/v/v_Run_g{g:02d}_c{c:02d}.avi"), "Run") for g in range(10) for c in range(3)]
    split_of, _ = assign_splits(videos, (0.6, 0.2, 0.2), r"_g(\d+)_", 5)
    for g in range(10):
        assert len({split_of[v.path] for v in videos if f"_g{g:02d}_" in v.path.name}) == 1
    assert sorted(split_of.values()).count("train") == 18  # 6 of 10 groups x 3 clips


def test_an_arrow_rows_file_name_is_the_name_it_gives():
    assert file_name("/cache/data-00000.arrow:12:video:clip.mp4") == "clip.mp4"
    assert group_of(Listed("/cache/data-00000.arrow:3:video:v_Jump_g04_c01.mp4", "Jump"), r"_g(\d+)_") == "04"


def test_a_segments_start_travels_through_the_table():
    """A manifest with a start column (segments of a recording): the start kept per row, 0 where absent."""
    text = "path,label,split,group,frames,fps,duration,start\nr.avi,x,train,r,50,25.0,2.0,12.4\nr.avi,y,val,r,25,25.0,1.0,0\n"
    table = RecordTable.read_csv(text)
    assert table.start.dtype == np.float64 and [r.start for r in table] == [12.4, 0.0]
    assert table.take(np.array([0]))[0].start == 12.4 and RecordTable.of(list(table))[0] == table[0]
    assert RecordTable.read_csv("path,label,split,group,frames,fps,duration\na.avi,x,train,g,3,25.0,0.1\n")[0].start == 0
