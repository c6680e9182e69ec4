"""int8 dynamic quantisation of the Whisper encoder for CPU decoding (``dtype: int8``).

On a CPU, decoding time goes mostly to the encoder's linear layers over a full 30-s window.
PyTorch's dynamic quantisation stores those weights as int8 and quantises activations per batch,
which roughly halves their time on x86 (fbgemm). Only the encoder's ``Linear`` layers change;
convolutions, LayerNorms, attention and the whole text decoder stay float32. The effect on
accuracy is measured in benchmarks/RESULTS.md (CPU section), not assumed.
"""
from __future__ import annotations

import copy

import torch
from whisper.model import AudioEncoder, Linear as WhisperLinear


def quantize_encoder(encoder: AudioEncoder) -> torch.nn.Module:
    """A float32 copy of ``encoder`` with every Linear layer dynamically quantised to int8."""
    enc = copy.deepcopy(encoder).float().cpu().eval()
    for mod in enc.modules():
        # whisper's Linear only casts its weight to the input dtype; for float32 input it is
        # exactly nn.Linear, the type PyTorch's quantiser knows how to swap
        if type(mod) is WhisperLinear:
            mod.__class__ = torch.nn.Linear
    return torch.ao.quantization.quantize_dynamic(enc, {torch.nn.Linear}, dtype=torch.qint8)
