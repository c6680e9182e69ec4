"""Whisper ASR task for ESPnet: encoder/decoder wrappers, prompt preprocessor, model, task."""
