from pathlib import Path

import pytest
import torch
import yaml

from twister_plugin.tts.vits_infer import infer_batch

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "egs2" / "twister" / "asr1" / "conf" / "tts" / "tiny.yaml"


@pytest.fixture(scope="module")
def vits():
    from espnet2.gan_tts.vits import VITS

    conf = yaml.safe_load(TINY.read_text())["tts_conf"]
    conf["generator_params"]["spk_embed_dim"] = 8
    conf["generator_params"]["spks"] = 3
    torch.manual_seed(0)
    return VITS(idim=40, odim=513, **conf).eval()


def test_batch_of_one_matches_espnet_inference(vits):
    text = torch.tensor([5, 9, 12, 7, 3, 22])
    spemb, sid = torch.randn(8), torch.tensor([1])
    torch.manual_seed(3)
    ref = vits.inference(text, sids=sid, spembs=spemb, alpha=1.2)["wav"]
    torch.manual_seed(3)
    wav, frames = infer_batch(vits.generator, text[None], torch.tensor([6]), sids=sid,
                              spembs=spemb[None], alpha=torch.tensor([1.2]))
    hop = vits.generator.upsample_factor
    assert int(frames[0]) * hop == ref.numel()
    torch.testing.assert_close(wav[0, : ref.numel()], ref)


def test_padded_batch_matches_single_sentences_without_noise(vits):
    texts = [torch.tensor([5, 9, 12, 7]), torch.tensor([3, 22, 8, 8, 30, 2, 11])]
    spembs, sids = torch.randn(2, 8), torch.tensor([0, 2])
    alpha = torch.tensor([1.0, 0.8])
    padded = torch.nn.utils.rnn.pad_sequence(texts, batch_first=True)
    kw = dict(noise_scale=0.0, noise_scale_dur=0.0)
    wav, frames = infer_batch(vits.generator, padded, torch.tensor([4, 7]), sids=sids,
                              spembs=spembs, alpha=alpha, **kw)
    hop = vits.generator.upsample_factor
    for b, t in enumerate(texts):
        one, n = infer_batch(vits.generator, t[None], torch.tensor([len(t)]), sids=sids[b:b + 1],
                             spembs=spembs[b:b + 1], alpha=alpha[b:b + 1], **kw)
        assert int(frames[b]) == int(n[0])
        length = int(n[0]) * hop
        inner = length - 4 * hop  # decoder convolutions see the padding near the end
        torch.testing.assert_close(wav[b, :inner], one[0, :inner], atol=1e-4, rtol=1e-3)


def test_max_frames_cuts_decoding_but_reports_full_length(vits):
    text = torch.tensor([[5, 9, 12, 7, 3, 22]])
    kw = dict(sids=torch.tensor([0]), spembs=torch.randn(1, 8), noise_scale_dur=0.0)
    _, full = infer_batch(vits.generator, text, torch.tensor([6]), **kw)
    wav, frames = infer_batch(vits.generator, text, torch.tensor([6]), max_frames=2, **kw)
    assert int(frames[0]) == int(full[0]) > 2
    assert wav.shape[1] == 2 * vits.generator.upsample_factor
