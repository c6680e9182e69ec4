"""Multi-speaker TTS for Twister: code-switching text frontend, ESPnet task, synthesis.

Modules:
    symbols    the one phone symbol table (zh initials/finals+tone, en ARPAbet, pauses, specials)
    text_norm  split text into language runs; numbers and symbols read per language
    g2p_zh     Han characters -> pinyin initials and tonal finals (pypinyin)
    g2p_en     English words -> ARPAbet (CMUdict, espeak-ng fallback, letter spelling)
    frontend   Frontend(config).phonemize(text) -> list[str]; unknown characters reported
    numbers    numbers read aloud in Mandarin (cn2an) or English (inflect)
    speaker    pooled Whisper-encoder speaker embeddings and the voice bank / sampler
    task       TwisterTTSTask (ESPnet GANTTSTask: VITS) and TwisterMelTTSTask (ESPnet TTSTask:
               twister_fastspeech), chosen from the config by task_for(); used by bin/tts_train
    fastspeech TwisterFastSpeech: non-autoregressive log-mel TTS with a learned alignment
    vocoder    batched Griffin-Lim that inverts exactly the model's log-mel fbank
    mas        batched monotonic alignment search (torch), equal to ESPnet's numba viterbi_decode
    align_loss batched forward-sum loss and beta-binomial prior for the alignment module
    prepare    data dir -> ESPnet TTS dump (phone text, tokens, spembs, sids, shapes)
    vits_infer batched VITS inference with per-sentence speaker embeddings and speeds
    synth_engines  one synthesis strategy per model kind (VITS; mel model + Griffin-Lim)
    synthesize text corpus -> wavs + Kaldi dir + lhotse manifests (sharded, resumable)
    synth_io   atomic wav writing, per-shard tables, merge and lhotse manifests
"""
