"""Decoding speed and accuracy of Whisper systems on one set, in one run on one card.

Systems: (a) openai-whisper per-utterance ``transcribe``, (b) openai-whisper batched
``whisper.decode``, (c) Hugging Face ``generate`` (transformers, SDPA), (d) ours
(``twister_plugin.decode.BatchedDecoder``). All start from waveforms already in memory (audio
loading is timed once, separately) and end at text; speed is audio seconds / wall seconds.

Sizes without weights here (small ... large-v3): ``--random_init SIZE`` builds that size with
random weights (speed only, labelled so; no CER) and makes every system generate exactly
``--forced_tokens`` tokens per utterance (end-of-text suppressed / HF ``min_new_tokens``), so all
systems do the same decoder work.

Usage:
    python benchmarks/decode_speed.py --manifest ../shared/data/zh/aishell_sample_S0150/manifest.tsv \
        --model tools/whisper/base.pt --device cuda --out bench_decode.json [--limit 500] [--limit_a 100]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import whisper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twister_plugin.data.audio import load_utt  # noqa: E402
from twister_plugin.data.manifest import read_manifest  # noqa: E402
from twister_plugin.decode import BatchedDecoder, DecoderConfig  # noqa: E402
from twister_plugin.scoring.metrics import get_metric  # noqa: E402
from twister_plugin.scoring.score import score  # noqa: E402
from twister_plugin.whisper import load_whisper  # noqa: E402


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def sys_transcribe(model, waves, lang, device, bs):
    out = []
    for w in waves:
        r = model.transcribe(w, language=lang, temperature=0.0, condition_on_previous_text=False,
                             without_timestamps=True, fp16=device.startswith("cuda"), verbose=None)
        out.append(r["text"].strip())
    return out


FORCED = {"tokens": 0}  # --forced_tokens: every system generates exactly this many tokens


def sys_whisper_decode(model, waves, lang, device, bs):
    extra = {}
    if FORCED["tokens"]:
        eot = whisper.tokenizer.get_tokenizer(model.is_multilingual, num_languages=model.num_languages).eot
        extra = dict(sample_len=FORCED["tokens"], suppress_tokens=f"-1,{eot}")
    opts = whisper.DecodingOptions(language=lang, without_timestamps=True, fp16=device.startswith("cuda"), **extra)
    out = []
    for i in range(0, len(waves), bs):
        mel = torch.stack([whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(w)).to(device),
                                                       model.dims.n_mels) for w in waves[i:i + bs]])
        out += [r.text.strip() for r in whisper.decode(model, mel, opts)]
    return out


def sys_hf(hf_bundle, waves, lang, device, bs):
    hf, fe, tok = hf_bundle
    out = []
    for i in range(0, len(waves), bs):
        feats = fe(list(waves[i:i + bs]), sampling_rate=16000, return_tensors="pt", device=device).input_features
        n = FORCED["tokens"]
        ids = hf.generate(input_features=feats.to(device, hf.dtype), language=lang, task="transcribe",
                          do_sample=False, num_beams=1, max_new_tokens=n or 224,
                          **(dict(min_new_tokens=n) if n else {}))
        out += [tok.decode([t for t in seq.tolist() if t < tok.eot]).strip() for seq in ids]
    return out


def sys_faster_whisper(fw, waves, lang, device, bs):
    out = []
    for w in waves:
        segs, _ = fw.transcribe(w, language=lang, beam_size=1, temperature=0.0, without_timestamps=True,
                                condition_on_previous_text=False, vad_filter=False)
        out.append("".join(s.text for s in segs).strip())
    return out


def sys_ours(decoder, waves, lang, device, bs):
    return [r.text for r in decoder.decode_all(list(waves), languages=[lang] * len(waves), batch_size=bs)]


def run(name, fn, model, waves, lang, device, bs, refs, ids, seconds, repeats=1):
    """Warm up on 4 clips, then ``repeats`` timed passes over every clip; the row reports the last
    pass (steady state: allocator, cuDNN plans and kernels for these batch shapes already made)
    and lists every pass's wall time. Every system gets the same treatment."""
    fn(model, waves[: min(4, len(waves))], lang, device, bs)  # warm-up (kernels, allocator)
    walls = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        hyps = fn(model, waves, lang, device, bs)
        sync(device)
        walls.append(time.perf_counter() - t0)
    wall = walls[-1]
    cer = None if FORCED["tokens"] else score({u: refs[u] for u in ids}, dict(zip(ids, hyps)),
                                              get_metric("cer"), set_name=name)[1].rate
    row = dict(system=name, n_utts=len(ids), audio_s=round(seconds, 1), wall_s=round(wall, 3),
               x_real_time=round(seconds / wall, 1), batch=bs, cer=cer,
               wall_s_passes=[round(w, 3) for w in walls],
               x_real_time_first_pass=round(seconds / walls[0], 1))
    print(json.dumps(row), flush=True)
    return row, hyps


def _spin() -> None:
    while True:
        pass


def start_cpu_load(n: int) -> list:
    """``n`` daemon processes that keep one CPU core busy each (terminated at the end)."""
    import multiprocessing as mp

    procs = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    return procs


def random_whisper(size: str, device: str):
    """Two copies (the one all systems share, and fp32 for openai-whisper's own paths) of a
    random-weight Whisper of ``size`` (same seed, same weights)."""
    from whisper.model import Whisper

    from twister_plugin.asr.sizes import dims_for

    torch.manual_seed(0)
    model = Whisper(dims_for(size)).to(device)
    m32 = Whisper(dims_for(size)).to(device)
    m32.load_state_dict(model.state_dict())
    return model, m32.float()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--language", default="zh")
    p.add_argument("--limit", type=int, default=0, help="first N utterances (0: all)")
    p.add_argument("--limit_a", type=int, default=100, help="utterances for the slow per-utt system (a)")
    p.add_argument("--systems", default="a,b,c,d")  # a: per-utt transcribe, b: whisper.decode, c: HF, d: ours, d8: ours int8 (CPU), e/e32: faster-whisper
    p.add_argument("--bs_b", type=int, default=128)
    p.add_argument("--bs_c", type=int, default=256)
    p.add_argument("--bs_d", default="256")
    p.add_argument("--dtype_d", default="float16")
    p.add_argument("--ct2_dir", default="tools/whisper/ct2/base", help="CTranslate2 model for system e")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: library default)")
    p.add_argument("--out", default="bench_decode.json")
    p.add_argument("--hyp_dir", default="")
    p.add_argument("--random_init", default="", help="a Whisper size built with random weights "
                   "(speed only; --model is then not read)")
    p.add_argument("--forced_tokens", type=int, default=0,
                   help="tokens every system generates per utterance (default 24 with --random_init)")
    p.add_argument("--repeats", type=int, default=2,
                   help="timed passes per system; the last one is reported (1: cold single pass)")
    p.add_argument("--cpu_load", type=int, default=0,
                   help="busy processes spinning on the host CPUs while every system runs "
                        "(a shared host: other jobs' data loaders); 0: none")
    p.add_argument("--cudnn_sdpa", action="store_true",
                   help="keep torch's default SDPA order (cuDNN first on an H100) for every system; default: "
                        "cuDNN attention off for every system, as the plugin runs (twister_plugin/utils/attention.py)")
    a = p.parse_args()
    if a.cudnn_sdpa:  # BatchedDecoder (system d) keeps it too, so that all systems share one setting
        os.environ["TWISTER_CUDNN_SDPA"] = "1"
    else:
        from twister_plugin.utils.attention import avoid_cudnn_attention

        avoid_cudnn_attention()
    burners = start_cpu_load(a.cpu_load)
    if a.threads:
        torch.set_num_threads(a.threads)
    dd = read_manifest(a.manifest)
    ids = dd.utt_ids[: a.limit or None]
    t0 = time.perf_counter()
    waves = [load_utt(dd, u) for u in ids]
    load_s = time.perf_counter() - t0
    secs = [len(w) / 16000 for w in waves]
    refs = dd.text
    half = a.device.startswith("cuda")
    if a.random_init:
        model, m32 = random_whisper(a.random_init, a.device)
        FORCED["tokens"] = a.forced_tokens or 24
    else:
        model = load_whisper(a.model, device=a.device)
        m32 = load_whisper(a.model, device=a.device).float()  # openai-whisper keeps fp32 weights, fp16 compute
        FORCED["tokens"] = a.forced_tokens
    model = model.half() if half else model.float()
    rows, hyps = [], {}
    card = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    meta = dict(card=card, torch=torch.__version__, whisper=whisper.__version__, load_audio_s=round(load_s, 2),
                weights=f"random init {a.random_init} (speed only)" if a.random_init else a.model,
                forced_tokens=FORCED["tokens"] or None, cpu_load=a.cpu_load,
                host_cpus=os.cpu_count(), cudnn_sdpa=torch.backends.cuda.cudnn_sdp_enabled())
    for s in a.systems.split(","):
        if s == "a":
            n = min(a.limit_a, len(ids))
            row, h = run("a_transcribe_per_utt", sys_transcribe, m32, waves[:n], a.language, a.device, 1, refs, ids[:n], sum(secs[:n]), a.repeats)
        elif s == "b":
            row, h = run("b_whisper_decode", sys_whisper_decode, m32, waves, a.language, a.device, a.bs_b, refs, ids, sum(secs), a.repeats)
        elif s == "c":
            import transformers
            from transformers import WhisperFeatureExtractor
            from hf_whisper import to_hf
            from whisper.tokenizer import get_tokenizer
            meta["transformers"] = transformers.__version__
            hf = to_hf(model.float()).to(a.device).eval()
            hf = hf.half() if half else hf
            model = model.half() if half else model
            fe = WhisperFeatureExtractor(feature_size=model.dims.n_mels)
            tok = get_tokenizer(model.is_multilingual, num_languages=model.num_languages)
            with torch.no_grad():
                row, h = run("c_hf_generate", sys_hf, (hf, fe, tok), waves, a.language, a.device, a.bs_c, refs, ids, sum(secs), a.repeats)
            del hf
        elif s.startswith("e"):  # e: faster-whisper (CTranslate2) int8, e32: float32, per utterance
            from faster_whisper import WhisperModel
            ctype = "float32" if s == "e32" else "int8"
            fw = WhisperModel(a.ct2_dir, device="cuda" if half else "cpu", compute_type=ctype, cpu_threads=a.threads)
            row, h = run(f"e_faster_whisper_{ctype}", sys_faster_whisper, fw, waves, a.language, a.device, 1, refs, ids, sum(secs), a.repeats)
        elif s in ("d", "d8"):  # d8: ours with the int8 (dynamic quantised) encoder, CPU only
            dtype = "int8" if s == "d8" else a.dtype_d if half else "float32"
            for bs in [int(x) for x in a.bs_d.split(",")]:
                forced = {}
                if FORCED["tokens"]:
                    eot = whisper.tokenizer.get_tokenizer(m32.is_multilingual, num_languages=m32.num_languages).eot
                    forced = dict(max_new_tokens=FORCED["tokens"], suppress_tokens=f"-1,{eot}")
                dec = BatchedDecoder(m32, DecoderConfig(dtype=dtype, **forced))
                row, h = run(f"d_ours_{dtype}_bs{bs}", sys_ours, dec, waves, a.language, a.device, bs, refs, ids, sum(secs), a.repeats)
                rows.append(row)
                hyps[row["system"]] = h
            continue
        rows.append(row)
        hyps[row["system"]] = h
    for b in burners:
        b.terminate()
    Path(a.out).write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, ensure_ascii=False), encoding="utf-8")
    if a.hyp_dir:
        Path(a.hyp_dir).mkdir(parents=True, exist_ok=True)
        for name, h in hyps.items():
            n = len(h)
            (Path(a.hyp_dir) / f"{name}.txt").write_text(
                "".join(f"{u} {t}\n" for u, t in zip(ids[:n], h)), encoding="utf-8")
    print("| system | utts | x real time | CER % |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['n_utts']} | {r['x_real_time']} | {r['cer']} |")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
