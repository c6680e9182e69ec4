"""Self-attention cache: writes, row selection (reorder, drop, grow) and refused writes."""
from __future__ import annotations

import pytest
import torch

from twister_plugin.decode.kv_cache import CrossAttentionCache, SelfAttentionCache


def _cache() -> SelfAttentionCache:
    return SelfAttentionCache(n_layer=2, max_rows=6, n_head=2, max_len=5, head_dim=3,
                              dtype=torch.float32, device=torch.device("cpu"))


def test_write_returns_everything_so_far():
    cache = _cache()
    cache.reset(3)
    k = torch.randn(3, 2, 2, 3)
    k_all, _ = cache.write(0, k, -k)
    cache.advance(2)
    k2 = torch.randn(3, 2, 1, 3)
    k_all, v_all = cache.write(0, k2, -k2)
    assert k_all.shape == (3, 2, 3, 3)
    torch.testing.assert_close(k_all, torch.cat([k, k2], dim=2))
    torch.testing.assert_close(v_all, -torch.cat([k, k2], dim=2))


def test_select_reorders_drops_and_grows_rows():
    cache = _cache()
    cache.reset(3)
    for layer in range(2):
        cache.write(layer, torch.arange(3.0)[:, None, None, None].expand(3, 2, 2, 3).clone(),
                    torch.zeros(3, 2, 2, 3))
    cache.advance(2)
    cache.select(torch.tensor([2, 0]))  # drop row 1, swap the others
    assert cache.n_rows == 2 and cache.k[1, :2, 0, 0, 0].tolist() == [2.0, 0.0]
    cache.select(torch.tensor([0, 0, 0, 1, 1, 1]))  # beam expansion: each row three times
    assert cache.k[0, :6, 1, 1, 2].tolist() == [2.0, 2.0, 2.0, 0.0, 0.0, 0.0]


def test_refused_writes():
    cache = _cache()
    cache.reset(2)
    with pytest.raises(ValueError, match="2 rows"):
        cache.write(0, torch.zeros(3, 2, 1, 3), torch.zeros(3, 2, 1, 3))
    with pytest.raises(ValueError, match="5 positions"):
        cache.write(0, torch.zeros(2, 2, 6, 3), torch.zeros(2, 2, 6, 3))
    with pytest.raises(ValueError, match="holds 6"):
        cache.reset(7)
    with pytest.raises(ValueError, match="holds 6"):
        cache.select(torch.zeros(7, dtype=torch.long))


def test_cross_cache_keeps_selected_audios():
    k = [torch.arange(4.0)[:, None, None, None].expand(4, 2, 5, 3)]
    cross = CrossAttentionCache(k, [x.clone() for x in k])
    cross.select(torch.tensor([1, 3]))
    assert cross.n_audio == 2 and cross.k[0][:, 0, 0, 0].tolist() == [1.0, 3.0]
