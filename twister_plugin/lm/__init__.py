"""Text-only adaptation: an ESPnet LM over Whisper's text tokens (:mod:`.task`, heavy: imports
ESPnet) and shallow fusion with it in the batched decoder (:mod:`.fusion`, light)."""
from twister_plugin.lm.fusion import ShallowFusion, load_lm

__all__ = ["ShallowFusion", "load_lm"]
