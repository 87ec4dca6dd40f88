"""Labeler agreement: Cohen's kappa, Krippendorff's alpha, pairwise tables, disagreements."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vlmrm_core.metrics import (
    UndefinedAgreementError,
    cohens_kappa,
    current_labels,
    krippendorff_alpha,
    labeller_disagreements,
    pairwise_kappa,
)

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1–5, missing labels. Published: nominal .743, ordinal .815, interval .849,
# ratio .797.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
        [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
    ]
)


# ---------------------------------------------------------------- Cohen's kappa


def test_kappa_perfect_agreement_is_one() -> None:
    assert cohens_kappa([0, 1, 1, 0, 2], [0, 1, 1, 0, 2]) == 1.0


def test_kappa_hand_computed() -> None:
    # Confusion [[20, 5], [10, 15]] over 50 items: p_o = 35/50 = 0.7;
    # p_e = (25·30 + 25·20) / 50² = 0.5; κ = (0.7 − 0.5) / 0.5 = 0.4.
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_kappa_systematic_disagreement_is_negative() -> None:
    assert cohens_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)


def test_kappa_accepts_strings_and_skips_missing() -> None:
    a = ["yes", "no", "yes", None, "no"]
    b = ["yes", "no", "no", "yes", NAN]
    # Items 0–2 remain: p_o = 2/3, p_e = (2/3)(1/3) + (1/3)(2/3) = 4/9 → κ = 0.4.
    assert cohens_kappa(a, b) == pytest.approx(0.4)


def test_kappa_without_variation_is_undefined() -> None:
    with pytest.raises(UndefinedAgreementError, match="same label"):
        cohens_kappa([1, 1, 1], [1, 1, 1])


def test_kappa_input_errors() -> None:
    with pytest.raises(ValueError, match="same items"):
        cohens_kappa([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="no labelled item"):
        cohens_kappa([0, None], [None, 1])


# ---------------------------------------------------------------- Krippendorff's alpha


@pytest.mark.parametrize(
    ("level", "published"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_alpha_reproduces_krippendorff_2011(level: str, published: float) -> None:
    assert krippendorff_alpha(KRIPPENDORFF_2011, level=level) == pytest.approx(published, abs=5e-4)


def test_alpha_nominal_exact_value() -> None:
    # Unit 12 has one label and drops out, leaving n = 40 pairable labels with value totals
    # n_c = 9, 13, 10, 5, 3 (Σ n_c² = 384). The diagonal of the coincidence matrix sums to 32:
    # m_u from the 8 unanimous units (28) plus 2 each from units 2 and 8 (6 agreeing ordered
    # pairs / (4 − 1)). Nominal α = 1 − (n − 1)(n − Σ o_cc) / (n² − Σ n_c²) = 1 − 39·8 / 1216.
    assert krippendorff_alpha(KRIPPENDORFF_2011) == pytest.approx(1 - 39 * 8 / 1216, rel=1e-12)


def test_alpha_all_agree_is_one() -> None:
    matrix = np.array([[1, 2, 3, NAN], [1, 2, 3, 4], [NAN, 2, 3, 4]])
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert krippendorff_alpha(matrix, level=level) == pytest.approx(1.0)


def test_alpha_two_coders_hand_computed() -> None:
    # Two coders, binary, no missing: pairs (0,0), (0,1), (1,1), (1,1).
    # o = [[2, 1], [1, 4]], n_0 = 3, n_1 = 5, n = 8: α = 1 − 7·2 / (2·3·5) = 1 − 14/30.
    matrix = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert krippendorff_alpha(matrix) == pytest.approx(1 - 14 / 30)


def test_alpha_nominal_accepts_category_names() -> None:
    names = np.where(np.isnan(KRIPPENDORFF_2011), None, KRIPPENDORFF_2011.astype(object))
    names = np.vectorize(lambda v: None if v is None else f"c{int(v)}", otypes=[object])(names)
    assert krippendorff_alpha(names) == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011))


def test_alpha_ignores_units_with_a_single_label() -> None:
    extra = np.column_stack([KRIPPENDORFF_2011, [NAN, NAN, 4, NAN]])
    assert krippendorff_alpha(extra) == pytest.approx(krippendorff_alpha(KRIPPENDORFF_2011))


def test_alpha_interval_is_invariant_to_linear_rescaling() -> None:
    assert krippendorff_alpha(10 * KRIPPENDORFF_2011 - 3, "interval") == pytest.approx(
        0.849, abs=5e-4
    )


def test_alpha_errors() -> None:
    with pytest.raises(UndefinedAgreementError):
        krippendorff_alpha(np.array([[1, 1], [1, 1]]))
    with pytest.raises(ValueError, match="at least two labelers"):
        krippendorff_alpha(np.array([[1, NAN], [NAN, 2]]))
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha(KRIPPENDORFF_2011, level="cardinal")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="numeric"):
        krippendorff_alpha(np.array([["a", "b"], ["a", "a"]], dtype=object), level="interval")
    with pytest.raises(ValueError, match="2-D"):
        krippendorff_alpha(np.array([1, 2, 3]))


# ---------------------------------------------------------------- label tables


@pytest.fixture
def labels_df() -> pd.DataFrame:
    rows = [
        # item, labeler, value, time
        ("f1", "ann", 1, 1),
        ("f1", "bob", 1, 2),
        ("f2", "ann", 0, 3),
        ("f2", "bob", 1, 4),
        ("f3", "ann", 1, 5),
        ("f3", "bob", 0, 6),
        ("f3", "bob", 1, 7),  # bob relabels f3: now agrees with ann
        ("f4", "ann", 0, 8),
        ("f4", "bob", 0, 9),
        ("f4", "cat", 1, 10),
        ("f5", "cat", 0, 11),
    ]
    return pd.DataFrame(rows, columns=["item", "labeler", "value", "time"])


def test_current_labels_keep_the_latest(labels_df: pd.DataFrame) -> None:
    current = current_labels(labels_df)
    assert len(current) == 10
    f3_bob = current[(current["item"] == "f3") & (current["labeler"] == "bob")]
    assert f3_bob["value"].tolist() == [1]
    # With an explicit order column, the latest in time wins whatever the row order.
    shuffled = labels_df.sample(frac=1.0, random_state=0)
    by_time = current_labels(shuffled, order_by="time")
    f3_bob = by_time[(by_time["item"] == "f3") & (by_time["labeler"] == "bob")]
    assert f3_bob["value"].tolist() == [1]


def test_pairwise_kappa_table(labels_df: pd.DataFrame) -> None:
    table = pairwise_kappa(labels_df, order_by="time")
    assert list(table.columns) == [
        "labeler_a",
        "labeler_b",
        "n_common",
        "observed_agreement",
        "kappa",
    ]
    pairs = {(row.labeler_a, row.labeler_b): row for row in table.itertuples()}
    assert set(pairs) == {("ann", "bob"), ("ann", "cat"), ("bob", "cat")}
    ann_bob = pairs[("ann", "bob")]
    assert ann_bob.n_common == 4
    # ann 1,0,1,0 vs bob 1,1,1,0: p_o = 3/4, p_e = (2·3 + 2·1)/16 = 1/2, κ = 0.5.
    assert ann_bob.observed_agreement == pytest.approx(0.75)
    assert ann_bob.kappa == pytest.approx(cohens_kappa([1, 0, 1, 0], [1, 1, 1, 0]))
    assert ann_bob.kappa == pytest.approx(0.5)
    # One common item (f4), labelled differently: p_o = 0 = p_e, so κ = 0.
    assert pairs[("ann", "cat")].n_common == 1
    assert pairs[("ann", "cat")].kappa == 0.0


def test_pairwise_kappa_is_nan_without_variation() -> None:
    df = pd.DataFrame({"item": [1, 1, 2, 2], "labeler": ["a", "b"] * 2, "value": [1, 1, 1, 1]})
    row = pairwise_kappa(df).iloc[0]
    assert row["n_common"] == 2
    assert row["observed_agreement"] == 1.0
    assert math.isnan(row["kappa"])


def test_pairwise_kappa_lists_pairs_without_common_items() -> None:
    df = pd.DataFrame({"item": [1, 2], "labeler": ["a", "b"], "value": [0, 1]})
    table = pairwise_kappa(df)
    assert table["n_common"].tolist() == [0]
    assert math.isnan(table["kappa"].iloc[0])


def test_labeller_disagreements_use_current_labels(labels_df: pd.DataFrame) -> None:
    found = labeller_disagreements(labels_df, order_by="time")
    assert found["item"].tolist() == ["f2", "f4"]
    f4 = found.set_index("item").loc["f4"]
    assert f4["n_labelers"] == 3
    assert f4["values"] == [0, 1]
    assert f4["labels"] == {"ann": 0, "bob": 0, "cat": 1}
    assert f4["mean"] == pytest.approx(1 / 3) and f4["spread"] == 1


def test_labeller_disagreements_ignore_a_small_spread_when_asked() -> None:
    df = pd.DataFrame(
        {"item": [1, 1, 2, 2], "labeler": ["a", "b", "a", "b"], "value": [0.6, 0.7, 0.0, 1.0]}
    )
    assert labeller_disagreements(df)["item"].tolist() == [1, 2]
    found = labeller_disagreements(df, min_spread=0.5)
    assert found["item"].tolist() == [2] and found["spread"].tolist() == [1.0]
    text = pd.DataFrame({"item": [1, 1], "labeler": ["a", "b"], "value": ["cat", "dog"]})
    assert math.isnan(labeller_disagreements(text, min_spread=0.5)["spread"].iloc[0])


def test_labeller_disagreements_empty_when_all_agree() -> None:
    df = pd.DataFrame({"item": [1, 1, 2], "labeler": ["a", "b", "a"], "value": [1, 1, 0]})
    found = labeller_disagreements(df)
    assert found.empty
    assert list(found.columns) == ["item", "n_labelers", "values", "labels", "mean", "spread"]


def test_custom_column_names_and_missing_columns() -> None:
    df = pd.DataFrame({"frame": [1, 1], "who": ["a", "b"], "success": [1, 0]})
    found = labeller_disagreements(df, item="frame", labeler="who", value="success")
    assert found["item"].tolist() == [1]
    with pytest.raises(ValueError, match="lacks column"):
        labeller_disagreements(df)
