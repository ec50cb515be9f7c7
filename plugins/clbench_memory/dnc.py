"""The Differentiable Neural Computer (Graves et al. 2016, Nature 538:471), as a plain nn.Module.

Per step t: the LSTM controller reads ``[x_t, r_{t-1}]``; its output ``h_t`` gives the interface
vector; the memory updates usage (free gates), allocates (free list), writes (erase then add),
updates the temporal links and precedence, and reads with R heads that mix backward, forward and
content modes. The step's output is a linear map of ``[h_t, r_t]``. Every forward call starts
from the same all-zero state, so a sample's output never depends on what was seen before.
"""

from __future__ import annotations

import torch
from torch import nn

from clbench_memory import addressing as A
from clbench_memory.controller import LSTMController, check_sizes, clip, clip_lstm_output
from clbench_memory.fused import Workspace, _transforms_active, link_step
from clbench_memory.fused_read import memory_read
from clbench_memory.fused_write import write_step


class DNC(nn.Module):
    """DNC with R read heads and K >= 1 write heads over an N x W memory.

    ``forward(x)``: x [B, T, input_size] -> per-step outputs [B, T, output_size].
    ``forward(x, return_trace=True)`` or :meth:`trace` also give the memory traces.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        memory_slots: int = 128,
        word_size: int = 64,
        read_heads: int = 4,
        write_heads: int = 1,
        hidden_size: int = 64,
        clip_value: float | None = 20.0,
        fused: bool = True,
        compiled_inference: bool = True,
    ):
        """Sizes as in the paper: N = ``memory_slots``, W = ``word_size``, R = ``read_heads``;
        ``clip_value`` clamps the controller output and the step outputs (None: no clipping);
        ``fused=False`` computes the link, the write and the reads with the plain
        :mod:`~clbench_memory.addressing` functions instead of the fused autograd nodes of
        :mod:`~clbench_memory.fused` and :mod:`~clbench_memory.fused_read` (same values, slower).
        ``compiled_inference``: for float32 calls without autograd (evaluation) and with one write
        head, run the whole sequence with the numba kernel of :mod:`~clbench_memory.compiled` when
        numba is installed (same values to float rounding, 2 to 3x faster on a CPU)."""
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
        self.input_size, self.output_size = input_size, output_size
        self.memory_slots, self.word_size = memory_slots, word_size
        self.read_heads, self.write_heads = read_heads, write_heads
        self.hidden_size, self.clip_value, self.fused = hidden_size, clip_value, fused
        self.compiled_inference = compiled_inference
        r, k, w = read_heads, write_heads, word_size
        # The interface vector xi_t, in this order (name, size); parts sharing an activation are
        # adjacent, so each activation is one operation.
        self._parts = {
            "read_keys": r * w,
            "write_keys": k * w,
            "write_vectors": k * w,
            "read_strengths": r,  # oneplus
            "write_strengths": k,  # oneplus
            "erase": k * w,  # sigmoid
            "free_gates": r,  # sigmoid
            "allocation_gates": k,  # sigmoid
            "write_gates": k,  # sigmoid
            "read_modes": r * (2 * k + 1),  # softmax per read head: backward (K), forward (K), content
        }
        self.controller = LSTMController(input_size, r * w, hidden_size)
        self.interface = nn.Linear(hidden_size, sum(self._parts.values()))
        self.output = nn.Linear(hidden_size + r * w, output_size)

    def extra_repr(self) -> str:
        """Sizes for ``print(model)``."""
        return (
            f"memory={self.memory_slots}x{self.word_size}, read_heads={self.read_heads}, "
            f"write_heads={self.write_heads}, clip_value={self.clip_value}, fused={self.fused}"
        )

    def _interface(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split the interface vector of controller output ``h`` [B, H] into named parts."""
        b, r, k, w = h.shape[0], self.read_heads, self.write_heads, self.word_size
        read_keys, write_keys, write_vectors, strengths, gates, modes = torch.split(
            self.interface(h), [r * w, k * w, k * w, r + k, k * w + r + 2 * k, r * (2 * k + 1)], dim=1
        )
        read_strengths, write_strengths = A.oneplus(strengths).split([r, k], dim=1)
        erase, free_gates, allocation_gates, write_gates = torch.sigmoid(gates).split([k * w, r, k, k], dim=1)
        return {
            "read_keys": read_keys.view(b, r, w),  # [B, R, W]
            "read_strengths": read_strengths,  # [B, R]
            "write_keys": write_keys.view(b, k, w),  # [B, K, W]
            "write_strengths": write_strengths,  # [B, K]
            "erase": erase.view(b, k, w),  # [B, K, W]
            "write_vectors": write_vectors.view(b, k, w),  # [B, K, W]
            "free_gates": free_gates,  # [B, R]
            "allocation_gates": allocation_gates,  # [B, K]
            "write_gates": write_gates,  # [B, K]
            "read_modes": torch.softmax(modes.view(b, r, 2 * k + 1), dim=2),  # [B, R, 2K + 1]
        }

    def initial_state(self, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """The all-zero state every forward call starts from (dtype and device of ``like``).

        The link and the precedence are None: known to be zero, which saves their first steps.
        """
        n, w, r, k, hs = self.memory_slots, self.word_size, self.read_heads, self.write_heads, self.hidden_size
        z = like.new_zeros
        return {
            "h": z(batch, hs),
            "c": z(batch, hs),
            "reads": z(batch, r * w),  # read vectors r_{t-1}, flattened
            "memory": z(batch, n, w),
            "memory_norms": z(batch, n) + A.EPSILON**0.5,  # safe_norm of the zero memory
            "usage": z(batch, n),
            "read_weights": z(batch, r, n),
            "write_weights": z(batch, k, n),
            "precedence": None,  # [B, K, N] once written
            "link": None,  # [B, K, N, N] once two steps have written
            "workspace": Workspace(),  # scratch of the fused nodes, per forward call
        }

    def _memory_step(self, xi: dict[str, torch.Tensor], s: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One step of memory access; ``s`` is the previous state, returns the new memory fields."""
        if s["precedence"] is None:  # first step: usage, write and read weights are all still zero
            usage = s["usage"]
        else:
            usage = A.update_usage(s["usage"], s["write_weights"], xi["free_gates"], s["read_weights"])  # [B, N]
        allocations = A.write_allocations(usage, xi["allocation_gates"] * xi["write_gates"])  # [B, K, N]
        if self.fused and self.write_heads == 1:  # content lookup, write weighting, erase and add
            memory, squared, write_weights = write_step(
                s["memory"], s["memory_norms"], xi["write_keys"], xi["write_strengths"], allocations,
                xi["allocation_gates"], xi["write_gates"], xi["erase"], xi["write_vectors"], s["workspace"],
            )  # fmt: skip
            memory_norms = torch.sqrt(squared + A.EPSILON)  # [B, N] = A.safe_norm(memory)
        else:
            write_content = self._content(s["memory"], s["memory_norms"], xi["write_keys"], xi["write_strengths"])
            write_weights = A.write_weighting(allocations, write_content, xi["allocation_gates"], xi["write_gates"])
            memory = A.erase_and_add(s["memory"], write_weights, xi["erase"], xi["write_vectors"])  # [B, N, W]
            memory_norms = A.safe_norm(memory)  # [B, N]
        link, precedence, forward, backward = self._link(s, write_weights)
        if self.fused:
            directional = torch.cat([backward, forward], dim=2)  # [B, R, 2K, N]
            read_weights, reads = memory_read(
                memory, memory_norms, xi["read_keys"], xi["read_strengths"], xi["read_modes"], directional
            )
        else:
            read_content = A.content_weights(memory, xi["read_keys"], xi["read_strengths"], memory_norms)  # [B, R, N]
            read_weights = A.read_weighting(read_content, forward, backward, xi["read_modes"])  # [B, R, N]
            reads = torch.bmm(read_weights, memory)  # [B, R, W]
        return {
            "memory": memory,
            "memory_norms": memory_norms,
            "usage": usage,
            "read_weights": read_weights,
            "write_weights": write_weights,
            "precedence": precedence,
            "link": link,
            "reads": reads.flatten(1),
        }

    def _content(self, memory, memory_norms, keys, strengths) -> torch.Tensor:
        """Write-side content weights [B, K, N] (see :func:`~clbench_memory.addressing.content_weights`)."""
        if self.fused:
            return memory_read(memory, memory_norms, keys, strengths, read=False)[0]
        return A.content_weights(memory, keys, strengths, memory_norms)

    def _link(self, s: dict[str, torch.Tensor], write_weights: torch.Tensor):
        """New link [B, K, N, N] (None while zero), precedence [B, K, N], and the forward and
        backward weights [B, R, K, N] that follow the link from the previous read weights."""
        if s["precedence"] is None:  # first step: p = 0, so the link stays zero and so do its reads
            b, k, n = write_weights.shape
            zeros = write_weights.new_zeros(b, self.read_heads, k, n)
            return None, write_weights, zeros, zeros
        precedence = A.update_precedence(s["precedence"], write_weights)  # [B, K, N]
        if self.fused:
            link, forward, backward = link_step(
                s["link"], s["precedence"], write_weights, s["read_weights"], s["workspace"]
            )
            return link, precedence, forward, backward
        prev_link = s["link"]
        if prev_link is None:
            prev_link = write_weights.new_zeros(*write_weights.shape, self.memory_slots)
        link = A.update_link(prev_link, s["precedence"], write_weights, self._off_diagonal(x_like=write_weights))
        forward, backward = A.directional_weights(link, s["read_weights"])
        return link, precedence, forward, backward

    def _off_diagonal(self, x_like: torch.Tensor) -> torch.Tensor:
        """[N, N] ones with a zero diagonal, for the unfused link update."""
        n = self.memory_slots
        return 1.0 - torch.eye(n, dtype=x_like.dtype, device=x_like.device)

    def forward(
        self, x: torch.Tensor, return_trace: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x [B, T, input_size] -> outputs [B, T, output_size].

        With ``return_trace=True`` returns ``(outputs, trace)``; see :meth:`trace` for its keys.
        """
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"DNC expects x of shape [batch, steps, {self.input_size}], got {list(x.shape)}")
        if not return_trace and self._can_run_compiled(x):
            return self._forward_compiled(x)
        batch, steps = x.shape[0], x.shape[1]
        state = self.initial_state(batch, x)
        x_gates = self.controller.input_gates(x)  # [T, B, 4H]
        weight_rh_t = self.controller.weight_rh.t()  # once per sequence, not per step
        hiddens, reads = [], []
        trace: dict[str, list[torch.Tensor]] = {"read_weights": [], "write_weights": [], "usage": []}
        for t in range(steps):
            h, c = self.controller.step(x_gates[t], state["reads"], state["h"], state["c"], weight_rh_t)
            h_out = clip_lstm_output(h, self.clip_value)  # [B, H]
            state = {**state, **self._memory_step(self._interface(h_out), state), "h": h, "c": c}
            hiddens.append(h_out)
            reads.append(state["reads"])
            if return_trace:
                for key in trace:
                    trace[key].append(state[key])
        features = torch.cat([torch.stack(hiddens, 1), torch.stack(reads, 1)], dim=2)  # [B, T, H + R*W]
        outputs = clip(self.output(features), self.clip_value)  # [B, T, output_size]
        if not return_trace:
            return outputs
        return outputs, {key: torch.stack(values, 1) for key, values in trace.items()}

    def _can_run_compiled(self, x: torch.Tensor) -> bool:
        """Whether :meth:`_forward_compiled` may serve this call: no autograd recording, no
        torch.func transform, one write head, a float32 CPU tensor and numba installed."""
        if not self.compiled_inference or self.write_heads != 1 or torch.is_grad_enabled() or _transforms_active():
            return False
        if x.device.type != "cpu" or x.dtype != torch.float32:
            return False
        from clbench_memory import compiled

        return compiled.available()

    def _forward_compiled(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` without autograd: the controller, the interface and the memory over the
        whole sequence in one compiled call (:func:`clbench_memory.compiled.run_sequence`), then
        the output layer. x [B, T, input_size] -> outputs [B, T, output_size]."""
        from clbench_memory import compiled

        hiddens, reads = compiled.run_sequence(
            self.controller.input_gates(x), self.controller.weight_rh, self.interface.weight, self.interface.bias,
            self.memory_slots, self.word_size, self.read_heads, self.clip_value, torch.get_num_threads(),
        )  # fmt: skip
        features = torch.cat([hiddens, reads], dim=2).transpose(0, 1)  # [B, T, H + R*W]
        return clip(self.output(features), self.clip_value)  # [B, T, output_size]

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run ``x`` [B, T, input_size] and return the memory traces (not detached):

        ``outputs`` [B, T, output_size]; ``read_weights`` [B, T, R, N]; ``write_weights``
        [B, T, K, N]; ``usage`` [B, T, N] (the usage each step allocated from, after freeing).
        """
        outputs, trace = self.forward(x, return_trace=True)
        return {"outputs": outputs, **trace}
