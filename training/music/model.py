"""The music model: a bidirectional Transformer over a 16th-note grid of four voices.

Each time step is one token: the sum of its four voices' cell embeddings, where a cell
is REST, HOLD, a pitch or MASK. The model predicts every voice's cell at every step, and
is trained Coconet-style (Huang et al. 2017) to fill in masked cells from the rest. The
same network therefore composes (everything masked), continues (the end masked) and
harmonises (alto, tenor and bass masked). Attention uses ALiBi distance biases
(Press et al. 2022) limited to the training window, so pieces may be longer than it.

`Composer` wraps the network with the sampler (annealed Gibbs sampling, Coconet's
schedule) and the contract's encoding; it is what `training/music/export.py` scripts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from deploy.contracts import FREE, HOLD, KEY_NAMES, MUSIC_STYLES, PITCH_HIGH, PITCH_LOW, REST

VOCAB = 2 + PITCH_HIGH - PITCH_LOW + 1  # REST, HOLD, then one token per pitch
MASK = VOCAB  # an input-only token: "fill this in"
PITCH_TOKEN = 2 - PITCH_LOW  # token = pitch + PITCH_TOKEN
END_BUCKETS = 64  # steps to the end of the piece, clamped: lets the model write cadences


@dataclass
class MusicConfig:
    d_model: int = 128
    n_layer: int = 4
    n_head: int = 4
    window: int = 128  # steps each position may attend to either side (the training crop)
    dropout: float = 0.1
    voices: int = 4

    def to_dict(self) -> dict:
        return asdict(self)


class Block(nn.Module):
    """Pre-norm Transformer block: self-attention with an additive bias, then an MLP."""

    def __init__(self, config: MusicConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.norm1 = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, 4 * config.d_model),
            nn.GELU(),
            nn.Linear(4 * config.d_model, config.d_model),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(d, dim=2)
        q = q.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        k = k.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        v = v.view(b, t, self.n_head, d // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.n_head) + bias
        y = att.softmax(dim=-1) @ v
        y = y.transpose(1, 2).reshape(b, t, d)
        x = x + self.dropout(self.proj(y))
        return x + self.dropout(self.mlp(self.norm2(x)))


class MusicModel(nn.Module):
    """tokens [B, T, 4] (+ style, key, steps to the end) -> logits [B, T, 4, VOCAB]."""

    def __init__(self, config: MusicConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.cells = nn.ModuleList([nn.Embedding(VOCAB + 1, d) for _ in range(config.voices)])
        self.beat = nn.Embedding(16, d)  # position in the 4/4 bar
        self.end_buckets, self.vocab = END_BUCKETS, VOCAB
        self.end = nn.Embedding(END_BUCKETS + 1, d)
        self.style = nn.Embedding(len(MUSIC_STYLES), d)
        self.key = nn.Embedding(len(KEY_NAMES), d)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, config.voices * VOCAB)
        self.window = config.window
        slopes = [2.0 ** (-8.0 * (h + 1) / config.n_head) for h in range(config.n_head)]
        self.register_buffer("slopes", torch.tensor(slopes).view(1, -1, 1, 1), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(
        self,
        tokens: torch.Tensor,
        style: torch.Tensor,
        key: torch.Tensor,
        length: torch.Tensor,
    ) -> torch.Tensor:
        """tokens [B, T, 4] (MASK where unknown); style, key, length (valid steps) [B]."""
        b, t, voices = tokens.shape
        steps = torch.arange(t, device=tokens.device)
        x = self.beat(steps % 16)[None] + self.style(style)[:, None] + self.key(key)[:, None]
        to_end = (length[:, None] - 1 - steps[None]).clamp(0, self.end_buckets)
        x = x + self.end(to_end)
        for voice, embedding in enumerate(self.cells):
            x = x + embedding(tokens[:, :, voice])
        bias = self._attention_bias(t, length)
        for block in self.blocks:
            x = block(x, bias)
        return self.head(self.norm(x)).view(b, t, voices, self.vocab)

    def _attention_bias(self, t: int, length: torch.Tensor) -> torch.Tensor:
        """ALiBi: -slope * distance, blocked beyond the window and on padding. [B,H,T,T]."""
        steps = torch.arange(t, device=length.device)
        distance = (steps[None, :] - steps[:, None]).abs().float()
        bias = -self.slopes * distance
        far = distance > self.window
        padding = steps[None, :] >= length[:, None]  # [B, T] keys beyond the piece
        blocked = far[None, None] | padding[:, None, None, :]
        return bias.masked_fill(blocked, -1e9)


def to_tokens(
    grid: torch.Tensor,
    free: int = FREE,
    mask: int = MASK,
    low: int = PITCH_LOW,
    shift: int = PITCH_TOKEN,
) -> torch.Tensor:
    """Contract cells (FREE, REST, HOLD, pitch) to model tokens (MASK, REST, HOLD, pitch)."""
    tokens = torch.where(grid >= low, grid + shift, grid)
    return torch.where(grid == free, torch.full_like(grid, mask), tokens)


def to_cells(tokens: torch.Tensor, shift: int = PITCH_TOKEN) -> torch.Tensor:
    """Model tokens (REST, HOLD, pitch) to contract cells."""
    return torch.where(tokens >= 2, tokens - shift, tokens)


# --- sampling: counter-based random numbers, the same on every device and in TorchScript ---


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 31-bit integer hash (xorshift-multiply); products stay inside int64."""
    for _ in range(3):
        x = ((x ^ (x >> 15)) * 0x2C1B3C6D) & 0x7FFFFFFF
        x = ((x ^ (x >> 12)) * 0x297A2D39) & 0x7FFFFFFF
    return x ^ (x >> 15)


def uniform(seed: torch.Tensor, stream: int, shape: list[int]) -> torch.Tensor:
    """Uniform numbers in (0, 1), shape [B, *shape], from per-item seeds [B] and a stream id."""
    count = 1
    for size in shape:
        count *= size
    index = torch.arange(count, device=seed.device, dtype=torch.int64)
    start = _mix((_mix(seed & 0x7FFFFFFF) + stream * 7919) & 0x7FFFFFFF)
    bits = _mix((start[:, None] + index[None]) & 0x7FFFFFFF)
    values = (bits.double() + 0.5) / 2147483648.0
    return values.view([seed.shape[0]] + shape)


class Composer(nn.Module):
    """The served model: fills the FREE cells of a grid by annealed Gibbs sampling.

    forward(given [B,T,4], style [B,1], key [B,1], seed [B,1], temperature [B,1],
    top_k [B,1]) -> (grid [B,T,4], events [B,N,4] padded with -1 rows).
    """

    def __init__(
        self,
        model: MusicModel,
        iterations: int = 48,
        floor: float = 0.05,
        rules: bool = True,
        unison_penalty: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.iterations = iterations
        self.floor = floor  # the smallest share of free cells resampled per iteration
        self.rules = rules  # forbid what voice_leading_rules() forbids while sampling
        self.unison_penalty = unison_penalty  # logit subtracted from doubling another voice
        self.free, self.mask = FREE, MASK

    def forward(
        self,
        given: torch.Tensor,
        style: torch.Tensor,
        key: torch.Tensor,
        seed: torch.Tensor,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.sample(given, style[:, 0], key[:, 0], seed[:, 0], temperature, top_k)
        grid = clean(to_cells(tokens))
        return grid, events(grid)

    def sample(
        self,
        given: torch.Tensor,
        style: torch.Tensor,
        key: torch.Tensor,
        seed: torch.Tensor,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
    ) -> torch.Tensor:
        b, t, voices = given.shape
        free = given == self.free
        tokens = to_tokens(given)
        length = torch.full([b], t, dtype=torch.int64, device=given.device)
        for i in range(self.iterations):
            # Coconet's schedule: resample a share of the free cells that shrinks to `floor`.
            share = max(self.floor, 1.0 - i / (0.75 * self.iterations))
            pick = uniform(seed, 2 * i, [t, voices]) < share
            masked = free & (pick | (tokens == self.mask))
            tokens = torch.where(masked, torch.full_like(tokens, self.mask), tokens)
            logits = self.prior(self.model(tokens, style, key, length).float(), tokens)
            drawn = self.draw(logits, seed, 2 * i + 1, temperature, top_k)
            tokens = torch.where(masked, drawn, tokens)
        if self.rules:
            tokens = self.repair(tokens, free, style, key, length, seed, temperature, top_k)
        return tokens

    def prior(self, logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The network's logits with the rules: what they forbid, and unisons made rarer."""
        if self.rules:
            logits = logits.masked_fill(voice_leading_rules(tokens), float("-inf"))
        if self.unison_penalty > 0:
            logits = logits - self.unison_penalty * unisons(tokens).float()
        return logits

    def repair(
        self,
        tokens: torch.Tensor,
        free: torch.Tensor,
        style: torch.Tensor,
        key: torch.Tensor,
        length: torch.Tensor,
        seed: torch.Tensor,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
    ) -> torch.Tensor:
        """Resample, one voice at a time, the free cells that break the rules now (cells
        drawn in the same pass could not see each other)."""
        voices = tokens.shape[2]
        for r in range(2 * voices):
            broken = voice_leading_rules(tokens).gather(3, tokens.unsqueeze(3)).squeeze(3)
            masked = free & broken
            masked[:, :, : r % voices] = False
            masked[:, :, r % voices + 1 :] = False
            held = torch.where(masked, torch.full_like(tokens, self.mask), tokens)
            logits = self.prior(self.model(held, style, key, length).float(), held)
            drawn = self.draw(logits, seed, 1000 + r, temperature, top_k)
            tokens = torch.where(masked, drawn, tokens)
        return tokens

    def draw(
        self,
        logits: torch.Tensor,
        seed: torch.Tensor,
        stream: int,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
    ) -> torch.Tensor:
        """One token per cell: Gumbel-max over temperature-scaled, top-k-limited logits."""
        b, t, voices, vocab = logits.shape
        scaled = logits / temperature.view(b, 1, 1, 1)
        k = torch.where(top_k <= 0, torch.full_like(top_k, vocab), top_k.clamp(max=vocab))
        kth = scaled.sort(dim=-1, descending=True).values.gather(
            -1, (k.view(b, 1, 1, 1) - 1).expand(b, t, voices, 1)
        )
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        gumbel = -torch.log(-torch.log(uniform(seed, stream, [t, voices, vocab])))
        return (scaled.double() + gumbel).argmax(dim=-1)


def held_from(cells: torch.Tensor, hold: int = HOLD) -> tuple[torch.Tensor, torch.Tensor]:
    """For every cell [B, T, V]: the step of the last non-HOLD cell at or before it in its
    voice (-1 if none) and that cell's value (what a HOLD continues)."""
    b, t, voices = cells.shape
    steps = torch.arange(t, device=cells.device).view(1, t, 1).expand(b, t, voices)
    last = torch.where(cells != hold, steps, torch.full_like(steps, -1)).cummax(dim=1).values
    return last, cells.gather(1, last.clamp(min=0))


def clean(grid: torch.Tensor, hold: int = HOLD, rest: int = REST) -> torch.Tensor:
    """HOLD cells that follow a rest (nothing to hold) become rests."""
    last, held = held_from(grid, hold)
    orphan = (grid == hold) & ((last < 0) | (held == rest))
    return torch.where(orphan, torch.full_like(grid, rest), grid)


def events(grid: torch.Tensor, hold: int = HOLD, low: int = PITCH_LOW) -> torch.Tensor:
    """Note events (voice, pitch, start, duration) of clean grids, rows of -1 as padding."""
    b, t, voices = grid.shape
    steps = torch.arange(t, device=grid.device).view(1, t, 1).expand(b, t, voices)
    breaks = torch.where(grid != hold, steps, torch.full_like(steps, t))
    after = torch.cat([breaks[:, 1:], torch.full_like(breaks[:, :1], t)], dim=1)
    next_break = after.flip(1).cummin(dim=1).values.flip(1)
    onsets = grid >= low
    rows: list[torch.Tensor] = []
    for item in range(b):
        where = onsets[item].nonzero()  # [N, 2] (step, voice), sorted by step then voice
        step, voice = where[:, 0], where[:, 1]
        pitch = grid[item, step, voice]
        duration = next_break[item, step, voice] - step
        rows.append(torch.stack([voice, pitch, step, duration], dim=1))
    longest = max([int(r.shape[0]) for r in rows])
    padded = torch.full([b, longest, 4], -1, dtype=torch.int64, device=grid.device)
    for item, r in enumerate(rows):
        padded[item, : r.shape[0]] = r
    return padded


def voice_leading_rules(
    tokens: torch.Tensor,
    hold: int = HOLD,
    rest: int = REST,
    mask: int = MASK,
    shift: int = PITCH_TOKEN,
) -> torch.Tensor:
    """bool [B, T, 4, VOCAB]: the tokens each cell may not take, given its neighbours now.

    A sampling prior with the rules of four-part writing that the network alone keeps
    breaking: no HOLD after a rest (nothing to hold); no new note that moves in parallel
    fifths or octaves with a voice that also moves at that step; no voice above the
    voice written above it, or below the one written below it (no crossing). Cells that
    are MASK constrain nothing, so every constraint is against notes already written.
    """
    b, t, voices = tokens.shape
    vocab = mask
    candidates = torch.arange(vocab, device=tokens.device) - shift  # a pitch per token >= 2
    is_pitch = torch.arange(vocab, device=tokens.device) >= 2
    now = sounding(tokens, hold, shift, mask)  # [B, T, 4] pitch, 0 when silent or unknown
    before = torch.cat([torch.zeros_like(now[:, :1]), now[:, :-1]], dim=1)
    moves = (tokens >= 2) & (tokens < mask) & (before > 0) & (now > 0) & (now != before)
    forbidden = torch.zeros([b, t, voices, vocab], dtype=torch.bool, device=tokens.device)
    previous_token = torch.cat([torch.full_like(tokens[:, :1], rest), tokens[:, :-1]], dim=1)
    forbidden[..., hold] = previous_token == rest
    p = candidates.view(1, 1, vocab)
    for v in range(voices):
        prev_v = before[:, :, v : v + 1]  # [B, T, 1]
        step_v = torch.sign(p - prev_v)
        for u in range(voices):
            if u == v:
                continue
            now_u, prev_u = now[:, :, u : u + 1], before[:, :, u : u + 1]
            interval = (prev_v - prev_u).abs() % 12
            perfect = (prev_v > 0) & (prev_u > 0) & ((interval == 0) | (interval == 7))
            same_way = step_v == torch.sign(now_u - prev_u)
            parallel = moves[:, :, u : u + 1] & perfect & same_way & (p != prev_v)
            parallel = parallel & ((p - now_u).abs() % 12 == interval)
            crossing = (now_u > 0) & ((p > now_u) if u < v else (p < now_u))
            forbidden[:, :, v] = forbidden[:, :, v] | ((parallel | crossing) & is_pitch)
    return forbidden


def unisons(
    tokens: torch.Tensor, hold: int = HOLD, shift: int = PITCH_TOKEN, mask: int = MASK
) -> torch.Tensor:
    """bool [B, T, 4, VOCAB]: the new-note tokens that would double a pitch another voice
    sounds at that step."""
    b, t, voices = tokens.shape
    now = sounding(tokens, hold, shift, mask)  # [B, T, 4]
    pitch = (torch.arange(mask, device=tokens.device) - shift).view(1, 1, mask)
    doubled = torch.zeros([b, t, voices, mask], dtype=torch.bool, device=tokens.device)
    for v in range(voices):
        for u in range(voices):
            if u != v:
                other = now[:, :, u : u + 1]
                doubled[:, :, v] = doubled[:, :, v] | ((pitch == other) & (other > 0))
    return doubled


def sounding(
    tokens: torch.Tensor, hold: int = HOLD, shift: int = PITCH_TOKEN, mask: int = MASK
) -> torch.Tensor:
    """The pitch each voice sounds at each step (HOLD continues it), 0 for rests and MASK."""
    last, start = held_from(tokens, hold)
    known = (last >= 0) & (start >= 2) & (start < mask)
    return torch.where(known, start - shift, torch.zeros_like(start))
