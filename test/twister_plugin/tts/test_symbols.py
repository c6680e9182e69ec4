from pathlib import Path

import pytest

from twister_plugin.tts.symbols import (
    BLANK, SOS_EOS, UNK, SymbolTable, TokenListError, default_tokens, write_tokens)


def test_default_table_order_and_uniqueness():
    toks = default_tokens()
    assert toks[0] == BLANK and toks[1] == UNK and toks[-1] == SOS_EOS
    assert len(toks) == len(set(toks))
    assert {"zh", "ang4", "v3", "ii1", "iii4", "rr", "AE1", "HH", ","} <= set(toks)


def test_write_read_roundtrip(tmp_path: Path):
    path = tmp_path / "tokens.txt"
    table = write_tokens(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == list(table.tokens)
    again = SymbolTable.read(path)
    assert again == table
    assert again.ids(["<blank>", "a1", "nonsense"]) == [0, table.tokens.index("a1"), 1]
    assert again.missing(["a1", "nonsense"]) == {"nonsense"}


@pytest.mark.parametrize(
    "tokens, message",
    [
        ([BLANK, UNK, "a1", "a1", SOS_EOS], "line 4: duplicate"),
        ([BLANK, "a1", SOS_EOS], "missing special token <unk>"),
        ([BLANK, UNK, "a 1", SOS_EOS], "line 3"),
        ([BLANK, UNK, "", SOS_EOS], "line 3"),
    ],
)
def test_bad_token_lists_are_refused(tokens, message):
    with pytest.raises(TokenListError, match=message):
        SymbolTable.from_list(tokens, where="x.txt")
