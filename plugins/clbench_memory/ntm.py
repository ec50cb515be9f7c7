"""The Neural Turing Machine (Graves, Wayne and Danihelka 2014, arXiv:1410.5401) as an nn.Module.

Per step t: the LSTM controller reads ``[x_t, r_{t-1}]``; each head emits a key, a strength, an
interpolation gate, a shift distribution over -s..s and a sharpening exponent gamma >= 1; the
write heads also emit erase and add vectors. The write heads address and write first (erase
then add), then the read heads address and read the updated memory. The step's output is a linear
map of ``[h_t, r_t]``. Every forward call starts from the same state: zero memory and every head's
previous weighting on slot 0 (this breaks the symmetry of an empty memory, so location-based
addressing can start without content).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from clbench_memory import addressing as A
from clbench_memory.controller import LSTMController, check_sizes, clip, clip_lstm_output
from clbench_memory.fused import Workspace
from clbench_memory.fused_write import memory_write


def interpolate(content: torch.Tensor, previous: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """``w_g = g * w_c + (1 - g) * w_{t-1}``: ``content``, ``previous`` [B, H, N], ``gate`` [B, H]."""
    g = gate.unsqueeze(2)
    return previous + g * (content - previous)


def circular_shift(weights: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Circular convolution ``w~(i) = sum_j s(j) w(i - j)`` over shifts j = -S..S.

    ``weights`` [B, H, N], ``shift`` [B, H, 2S + 1] (entry k is shift k - S; a shift of +1 moves
    the focus from slot i to slot i + 1) -> [B, H, N].
    """
    n, width = weights.shape[2], shift.shape[2]
    offsets = torch.arange(width, device=weights.device) - (width - 1) // 2  # [2S + 1]: -S..S
    source = (torch.arange(n, device=weights.device).unsqueeze(0) - offsets.unsqueeze(1)) % n  # [2S + 1, N]
    shifted = weights[:, :, source]  # [B, H, 2S + 1, N]: w(i - j) for each shift j
    return torch.matmul(shift.unsqueeze(2), shifted).squeeze(2)


def sharpen(weights: torch.Tensor, gamma: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``w(i) = w~(i)^gamma / sum_j w~(j)^gamma``, computed as a softmax of ``gamma * log(w~ + eps)``.

    The log form cannot divide 0 by 0 when every entry underflows. ``weights`` [B, H, N],
    ``gamma`` [B, H] (>= 1) -> [B, H, N], summing to 1.
    """
    return torch.softmax(gamma.unsqueeze(2) * torch.log(weights + eps), dim=2)


class NTM(nn.Module):
    """NTM with ``read_heads`` read and ``write_heads`` write heads over an N x W memory.

    ``forward(x)``: x [B, T, input_size] -> per-step outputs [B, T, output_size].
    ``forward(x, return_trace=True)`` or :meth:`trace` also give the memory traces.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        memory_slots: int = 128,
        word_size: int = 64,
        read_heads: int = 1,
        write_heads: int = 1,
        hidden_size: int = 64,
        shift_range: int = 1,
        clip_value: float | None = 20.0,
    ):
        """N = ``memory_slots``, W = ``word_size``; shifts run over -``shift_range``..``shift_range``;
        ``clip_value`` clamps the controller output and the step outputs (None: no clipping)."""
        super().__init__()
        check_sizes(
            input_size=input_size,
            output_size=output_size,
            memory_slots=memory_slots,
            word_size=word_size,
            read_heads=read_heads,
            write_heads=write_heads,
            hidden_size=hidden_size,
        )
        if not isinstance(shift_range, int) or shift_range < 0:
            raise ValueError(f"shift_range must be a non-negative integer, got {shift_range!r}")
        self.input_size, self.output_size = input_size, output_size
        self.memory_slots, self.word_size = memory_slots, word_size
        self.read_heads, self.write_heads = read_heads, write_heads
        self.hidden_size, self.shift_range, self.clip_value = hidden_size, shift_range, clip_value
        heads, w, shifts = read_heads + write_heads, word_size, 2 * shift_range + 1
        # Head parameters, write heads first: (name, size) in the order of the head vector.
        self._parts = {
            "keys": heads * w,
            "strengths": heads,  # softplus
            "gates": heads,  # sigmoid
            "gammas": heads,  # 1 + softplus
            "shifts": heads * shifts,  # softmax per head
            "erase": write_heads * w,  # sigmoid
            "add": write_heads * w,
        }
        self.controller = LSTMController(input_size, read_heads * w, hidden_size)
        self.heads = nn.Linear(hidden_size, sum(self._parts.values()))
        self.output = nn.Linear(hidden_size + read_heads * w, output_size)

    def extra_repr(self) -> str:
        """Sizes for ``print(model)``."""
        return (
            f"memory={self.memory_slots}x{self.word_size}, read_heads={self.read_heads}, "
            f"write_heads={self.write_heads}, shift_range={self.shift_range}, clip_value={self.clip_value}"
        )

    def _head_params(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split and activate the head parameters of controller output ``h`` [B, H_c]."""
        b, heads, k, w = h.shape[0], self.read_heads + self.write_heads, self.write_heads, self.word_size
        p = dict(zip(self._parts, torch.split(self.heads(h), list(self._parts.values()), dim=1)))
        return {
            "keys": p["keys"].view(b, heads, w),  # [B, K + R, W]
            "strengths": F.softplus(p["strengths"]),  # [B, K + R]
            "gates": torch.sigmoid(p["gates"]),  # [B, K + R]
            "gammas": A.oneplus(p["gammas"]),  # [B, K + R]
            "shifts": torch.softmax(p["shifts"].view(b, heads, -1), dim=2),  # [B, K + R, 2S + 1]
            "erase": torch.sigmoid(p["erase"]).view(b, k, w),  # [B, K, W]
            "add": p["add"].view(b, k, w),  # [B, K, W]
        }

    @staticmethod
    def address(memory, memory_norms, params: dict[str, torch.Tensor], heads: slice, previous) -> torch.Tensor:
        """Weightings [B, H, N] of the heads in ``heads``: content, interpolation, shift, sharpening.

        ``memory`` [B, N, W], ``memory_norms`` [B, N], ``previous`` [B, H, N] the heads' last weightings.
        """
        content = A.content_weights(memory, params["keys"][:, heads], params["strengths"][:, heads], memory_norms)
        gated = interpolate(content, previous, params["gates"][:, heads])
        return sharpen(circular_shift(gated, params["shifts"][:, heads]), params["gammas"][:, heads])

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Zero memory, zero reads and controller state, every head's weighting on slot 0."""
        n, w, r, k, hs = self.memory_slots, self.word_size, self.read_heads, self.write_heads, self.hidden_size
        z = like.new_zeros
        on_first = z(n)
        on_first[0] = 1.0
        return {
            "h": z(batch, hs),
            "c": z(batch, hs),
            "reads": z(batch, r * w),
            "memory": z(batch, n, w),
            "memory_norms": z(batch, n) + A.EPSILON**0.5,
            "read_weights": on_first.expand(batch, r, n),
            "write_weights": on_first.expand(batch, k, n),
            "workspace": Workspace(),  # scratch of the fused write, per forward call
        }

    def _memory_step(self, p: dict[str, torch.Tensor], s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Write (erase, add) then read; ``s`` is the previous state, returns the new memory fields."""
        k = self.write_heads
        write_weights = self.address(s["memory"], s["memory_norms"], p, slice(0, k), s["write_weights"])  # [B, K, N]
        if k == 1:
            memory, squared = memory_write(s["memory"], write_weights, p["erase"], p["add"], s["workspace"])
            memory_norms = torch.sqrt(squared + A.EPSILON)
        else:
            memory = A.erase_and_add(s["memory"], write_weights, p["erase"], p["add"])
            memory_norms = A.safe_norm(memory)
        read_weights = self.address(memory, memory_norms, p, slice(k, None), s["read_weights"])  # [B, R, N]
        reads = torch.bmm(read_weights, memory)  # [B, R, W]
        return {
            "memory": memory,
            "memory_norms": memory_norms,
            "read_weights": read_weights,
            "write_weights": write_weights,
            "reads": reads.flatten(1),
        }

    def forward(
        self, x: torch.Tensor, return_trace: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x [B, T, input_size] -> outputs [B, T, output_size].

        With ``return_trace=True`` returns ``(outputs, trace)``; see :meth:`trace` for its keys.
        """
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"NTM expects x of shape [batch, steps, {self.input_size}], got {list(x.shape)}")
        batch, steps = x.shape[0], x.shape[1]
        state = self.initial_state(batch, x)
        x_gates = self.controller.input_gates(x)  # [T, B, 4H]
        weight_rh_t = self.controller.weight_rh.t()  # once per sequence, not per step
        hiddens, reads = [], []
        trace: dict[str, list[torch.Tensor]] = {"read_weights": [], "write_weights": [], "usage": []}
        usage = x.new_zeros(batch, self.memory_slots)
        for t in range(steps):
            h, c = self.controller.step(x_gates[t], state["reads"], state["h"], state["c"], weight_rh_t)
            h_out = clip_lstm_output(h, self.clip_value)  # [B, H]
            state = {**state, **self._memory_step(self._head_params(h_out), state), "h": h, "c": c}
            hiddens.append(h_out)
            reads.append(state["reads"])
            if return_trace:
                written = A.combined_write(state["write_weights"])  # [B, N]
                usage = usage + written * (1.0 - usage)
                trace["usage"].append(usage)
                trace["read_weights"].append(state["read_weights"])
                trace["write_weights"].append(state["write_weights"])
        features = torch.cat([torch.stack(hiddens, 1), torch.stack(reads, 1)], dim=2)  # [B, T, H + R*W]
        outputs = clip(self.output(features), self.clip_value)  # [B, T, output_size]
        if not return_trace:
            return outputs
        return outputs, {key: torch.stack(values, 1) for key, values in trace.items()}

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run ``x`` [B, T, input_size] and return the memory traces (not detached):

        ``outputs`` [B, T, output_size]; ``read_weights`` [B, T, R, N]; ``write_weights``
        [B, T, K, N]; ``usage`` [B, T, N]. The NTM has no usage mechanism: its ``usage`` is the
        DNC's usage without freeing, ``u_t = u_{t-1} + (1 - u_{t-1}) w^w_t`` (how much each slot
        has been written so far, after step t's write).
        """
        outputs, trace = self.forward(x, return_trace=True)
        return {"outputs": outputs, **trace}
