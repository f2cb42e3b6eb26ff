import numpy as np
import pytest

from engine.bias import apply_bias, preview_bias
from engine.config import BiasConfig, from_dict
from engine.data.sources import load_digits_split
from engine.errors import ConfigError


@pytest.fixture(scope="module")
def raw():
    return load_digits_split(0.25, seed=0)


def test_mislabel_is_uniform_over_classes_and_keeps_counts(raw):
    biased, record = apply_bias(raw, BiasConfig(kind="mislabel", fraction=0.3), seed=0)
    counts = np.bincount(raw.y_train, minlength=10)
    picked = np.bincount(record.original_labels, minlength=10)
    np.testing.assert_array_equal(picked, np.round(0.3 * counts).astype(int))
    assert np.all(record.new_labels != record.original_labels)
    np.testing.assert_array_equal(biased.y_train[record.indices], record.new_labels)
    untouched = np.setdiff1d(np.arange(len(raw.y_train)), record.indices)
    np.testing.assert_array_equal(biased.y_train[untouched], raw.y_train[untouched])
    assert np.abs(record.counts_after - record.counts_before).max() < 0.2 * counts.mean()
    np.testing.assert_array_equal(biased.y_test, raw.y_test)
    np.testing.assert_array_equal(biased.x_test, raw.x_test)
    # New labels spread over all other classes.
    assert len(np.unique(record.new_labels)) == 10


def test_size_removes_a_fraction_of_one_class_only(raw):
    biased, record = apply_bias(raw, BiasConfig(kind="size", fraction=0.6, target_class=3), seed=0)
    before = np.bincount(raw.y_train, minlength=10)
    after = np.bincount(biased.y_train, minlength=10)
    assert before[3] - after[3] == round(0.6 * before[3]) == len(record.indices)
    np.testing.assert_array_equal(np.delete(after, 3), np.delete(before, 3))
    assert np.all(raw.y_train[record.indices] == 3)
    np.testing.assert_array_equal(record.counts_after, after)


def test_noise_changes_only_chosen_samples_of_the_class(raw):
    biased, record = apply_bias(raw, BiasConfig(kind="noise", fraction=0.6, target_class=3, variance=0.02), seed=0)
    changed = np.flatnonzero(np.any(biased.x_train != raw.x_train, axis=(1, 2, 3)))
    np.testing.assert_array_equal(changed, record.indices)
    assert np.all(raw.y_train[changed] == 3) and len(changed) == round(0.6 * np.sum(raw.y_train == 3))
    noise = biased.x_train[changed] - raw.x_train[changed]
    class_mean = raw.x_train[raw.y_train == 3].mean(axis=0)
    assert abs(float((noise - class_mean).var()) - 0.02) < 0.003
    assert record.noise_seed >= 0
    np.testing.assert_array_equal(biased.y_train, raw.y_train)


def test_same_seed_same_bias_other_seed_other_bias(raw):
    cfg = BiasConfig(kind="mislabel", fraction=0.3)
    a = apply_bias(raw, cfg, seed=5)[1]
    b = apply_bias(raw, cfg, seed=5)[1]
    c = apply_bias(raw, cfg, seed=6)[1]
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.new_labels, b.new_labels)
    assert not np.array_equal(a.indices, c.indices)


def test_class_out_of_range_is_refused(raw):
    with pytest.raises(ConfigError, match=r"bias.class = 12 .*\[0, 9\]"):
        apply_bias(raw, BiasConfig(kind="size", fraction=0.3, target_class=12), seed=0)


def test_preview_counts_for_the_form():
    preview = preview_bias(from_dict({"bias": {"kind": "size", "fraction": 0.9, "class": 3}}))
    assert preview["counts_before"][3] - preview["counts_after"][3] == preview["changed"] > 100
    assert preview["classes"][3] == "3"
