import numpy as np
import pytest

from twister_plugin.tts.frontend import Frontend, FrontendConfig
from twister_plugin.tts.symbols import write_tokens
from twister_plugin.tts.task import TwisterTTSTask


def _args(tmp_path, *extra):
    tokens = tmp_path / "tokens.txt"
    write_tokens(tokens)
    return TwisterTTSTask.get_parser().parse_args(["--token_list", str(tokens), *extra])


def test_twister_g2p_turns_raw_text_into_table_ids(tmp_path):
    args = _args(tmp_path, "--g2p", "twister", "--frontend_conf", "t2s=false")
    assert args.frontend_conf == {"t2s": False}
    pre = TwisterTTSTask.build_preprocess_fn(args, train=False)
    out = pre("utt1", {"text": "苹果表配apple pay"})
    fe = Frontend(FrontendConfig(t2s=False))
    want = fe.symbols.ids(fe.phonemize("苹果表配apple pay"))
    np.testing.assert_array_equal(out["text"], want)


def test_phone_text_with_g2p_none_is_split_on_spaces(tmp_path):
    args = _args(tmp_path)
    assert args.g2p is None and args.tts == "vits"
    pre = TwisterTTSTask.build_preprocess_fn(args, train=True)
    out = pre("utt1", {"text": "n i3 h ao3 , AE1 P AH0 L"})
    tokens = (tmp_path / "tokens.txt").read_text().split()
    assert [tokens[i] for i in out["text"]] == "n i3 h ao3 , AE1 P AH0 L".split()


def test_unknown_g2p_is_still_refused(tmp_path):
    with pytest.raises(SystemExit):
        _args(tmp_path, "--g2p", "nonsense")
