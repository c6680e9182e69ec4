"""CTC on the Whisper encoder: sentencepiece units, a small head, forced alignment and a
label-free agreement score between the attention decoder's hypothesis and the CTC head."""
