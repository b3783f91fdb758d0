"""The bad-input corpus through ingestion, validation and gap-filling: each case gets its specific outcome,
the good series in the same file always comes through, and every raw file stays archived."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting.gapfill import gapfill
from forecasting.validation import validate
from stores import files
from stores.archive import ingest, read_series_store
from tests.corpus.cases import CASES


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_case(case, tmp_path):
    name, content, outcome = CASES[case]
    inbox, store = tmp_path / "inbox", tmp_path / "store"
    inbox.mkdir()
    (inbox / name).write_bytes(content)
    summary = ingest(inbox, store)
    digest = files.content_hash(inbox / name)
    archived = next((store / "raw" / digest[:2]).glob(f"{digest}.*"))
    assert archived.read_bytes() == content  # archived unchanged, whatever it was

    if outcome[0] == "rejected":
        assert len(summary.files_rejected) == 1 and outcome[1] in summary.files_rejected[0]["reason"]
        assert name in summary.files_rejected[0]["reason"] or name == summary.files_rejected[0]["file"]
        return
    assert summary.files_rejected == []
    result = validate(read_series_store(store), None, max_staleness=7, file_names={digest: name})
    filled = gapfill(result.valid, result.facts["panel_frequency"], "linear", max_gap=14)
    quarantined = pd.concat([result.quarantined, filled.quarantined], ignore_index=True)
    clean = filled.clean
    good = [s for s in clean["series_id"].unique() if s.startswith("good-")]
    assert len(good) == 1, "the good series in the same file must come through"
    assert (clean["series_id"] == good[0]).sum() == 60 and not clean.loc[clean["series_id"] == good[0], "imputed"].any()

    kind = outcome[0]
    if kind == "accepted":
        assert quarantined.empty, quarantined["reason"].tolist()[:3]
        assert not clean["imputed"].any()
    elif kind == "imputed":
        assert quarantined.empty
        assert clean.loc[clean["series_id"] == outcome[1], "imputed"].any()
    else:
        _, series, text = outcome
        rows = quarantined if series is None else quarantined[quarantined["series_id"] == series]
        assert not rows.empty and rows["reason"].str.contains(text, regex=False).any(), \
            quarantined["reason"].tolist()[:3]
        if "row" in rows["reason"].iloc[0]:
            assert name in rows["reason"].iloc[0]  # row-level reasons name the file


def test_corpus_has_twenty_kinds():
    assert len(CASES) >= 20
