"""HTLNet (Tang et al., RecSys'24, §4.1): shared embedding, per-task towers, LEU and IFU.

Tasks are 0-indexed in chain order, the core last (model-spec §1.5). Tower t > 0 reads
concat(IFU_rep(reps[0..t-1]), IFU_label(les[0..t-1]), e) (Eq. 6); the label embedding of a
binary task is built from its detached, tempered logit (Eqs. 11-12, 15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from torch import nn

from htl.config import AT_LEAST_1, POSITIVE
from htl.gradients import SharedCut
from htl.models.base import ModelOptions, MultiTaskModel, Outputs
from htl.models.layers import FusedEmbedding, head, mlp, squeeze_head


@dataclass(frozen=True)
class HTLNetOptions(ModelOptions):
    """Architecture switches (ablations of Tables 3-5, Fig. 4). Algorithm 1 is HTLNet's
    registered gradient strategy (`gradient: none` is "w/o optimization")."""

    label_dim: Annotated[int, AT_LEAST_1] = 10  # L_d
    tau_start: Annotated[float, POSITIVE] = 10.0
    # run: τ goes from tau_start to tau_end over the run's optimiser steps, whatever their
    # number; step: the paper's τ halving every τ_d steps (App. B.1), tied to the data size
    tau_schedule: Literal["run", "step"] = "run"
    tau_end: Annotated[float, POSITIVE] = 1.0  # run: τ at the last step (1: p = the prediction)
    tau_decay_steps: Annotated[float, POSITIVE] = 10_000.0  # step: τ_d, τ halves every τ_d steps
    tau_staircase: bool = False  # step: halve at once every τ_d steps
    tau_min: float = 0.0  # floor for τ; 0 = none (model-spec A2)
    leu_noise: Literal["none", "logistic"] = "none"  # logistic: binary Gumbel-softmax, training
    ifu_op: Literal["attention", "concat"] = "attention"  # Fig. 4
    stop_gradient: bool = True  # Eq. 15
    use_leu: bool = True  # False: "w/o label embedding" (Table 4)
    use_rep_ifu: bool = True  # False: "w/o representation" (Table 4)

    def __post_init__(self) -> None:
        if not 0 <= self.tau_min <= self.tau_start:
            raise ValueError(f"'tau_min' must be in [0, tau_start], got {self.tau_min}")

    def tau(self, step: int, total_steps: int) -> float:
        """τ at optimiser step `step` (0-based) of `total_steps`. run: τ0·(τ_end/τ0)^(step /
        (total − 1)), geometric, reaching τ_end at the last step; step: τ0·0.5^(step/τ_d),
        continuous unless staircase (model-spec A2). Either floored at τ_min."""
        if self.tau_schedule == "run":
            fraction = min(step / max(total_steps - 1, 1), 1.0)
            value = self.tau_start * (self.tau_end / self.tau_start) ** fraction
        else:
            steps = self.tau_decay_steps
            exponent = step // steps if self.tau_staircase else step / steps
            value = self.tau_start * 0.5**exponent
        return max(value, self.tau_min)


class InformationFusion(nn.Module):
    """IFU (Eqs. 13-14): self-scored attention over the raw list of preceding tasks' vectors."""

    def __init__(self, dim: int, op: str) -> None:
        super().__init__()
        self.dim, self.op = dim, op
        if op == "attention":
            self.h1, self.h2, self.h3 = (nn.Linear(dim, dim, bias=False) for _ in range(3))
            for layer in (self.h1, self.h2, self.h3):
                nn.init.xavier_uniform_(layer.weight)

    def output_dim(self, items: int) -> int:
        return self.dim if self.op == "attention" else self.dim * items

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """[B, n, d] -> [B, d] (attention) or [B, n*d] (concat)."""
        if self.op == "concat":
            return items.flatten(1)
        scores = (self.h2(items) * self.h3(items)).sum(-1) / math.sqrt(self.dim)  # [B, n]
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)
        return (weights * self.h1(items)).sum(1)


class HTLNet(MultiTaskModel):
    Options = HTLNetOptions
    search_space = {
        "label_dim": [5, 10, 15, 20],
        "tau_decay_steps": [1000.0, 5000.0, 10000.0, 15000.0, 20000.0],  # Table 6, step only
        "tau_end": [0.5, 1.0, 2.0],  # run only
    }

    @classmethod
    def searched(cls, options: ModelOptions) -> dict[str, list]:
        """The grid of the schedule in use: τ_d tunes the step schedule, τ_end the run one."""
        unused = (
            "tau_decay_steps" if getattr(options, "tau_schedule", "run") == "run" else "tau_end"
        )
        return {k: v for k, v in cls.search_space.items() if k != unused}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        o: HTLNetOptions = self.options
        self.embedding = FusedEmbedding(self.cardinalities, self.embed_dim)
        rep_dim = self.tower_dims[0]
        n_binary = len(self.tasks.chain)
        self.rep_fusion = nn.ModuleList(
            InformationFusion(rep_dim, o.ifu_op) for _ in range(n_binary)
        )
        self.label_fusion = nn.ModuleList(
            InformationFusion(o.label_dim, o.ifu_op) for _ in range(n_binary)
        )
        self.label_tables = nn.ParameterList(
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(2, o.label_dim)))
            for _ in range(n_binary)
        )
        self.first_layers = nn.ModuleList()
        self.rest = nn.ModuleList()
        self.heads = nn.ModuleList()
        for t, name in enumerate(self.tasks.names):
            width = self.embedding.output_dim
            if t > 0 and o.use_rep_ifu:
                width += self.rep_fusion[t - 1].output_dim(t)
            if t > 0 and o.use_leu:
                width += self.label_fusion[t - 1].output_dim(t)
            self.first_layers.append(mlp(width, self.tower_dims[:1]))
            self.rest.append(mlp(rep_dim, self.tower_dims[1:]))
            self.heads.append(
                head(self.tower_dims[-1], self.tasks.core_outputs if name == self.tasks.core else 1)
            )
        self.register_buffer("tau", torch.tensor(o.tau_start))

    def shared_parameters(self) -> list[nn.Parameter]:
        return [self.embedding.weight]

    def on_train_step(self, step: int, total_steps: int) -> None:
        self.tau.fill_(self.options.tau(step, total_steps))

    def diagnostics(self, preds: dict[str, torch.Tensor]) -> dict[str, float]:
        """τ, and the 5th/95th percentiles of each LEU's p = sigmoid(z/τ) over the validation
        rows (z recovered from the predicted probability): a p that spans only a narrow band
        carries little label information, and shows here."""
        if not self.options.use_leu:
            return {}
        out = {"leu/tau": float(self.tau)}
        for name in self.tasks.chain:
            prob = preds[name].double().clamp(1e-12, 1 - 1e-12)
            p = torch.sigmoid((torch.log(prob) - torch.log1p(-prob)) / float(self.tau))
            low, high = torch.quantile(p, torch.tensor([0.05, 0.95], dtype=p.dtype)).tolist()
            out[f"leu/{name}/p05"], out[f"leu/{name}/p95"] = low, high
        return out

    def label_embedding(self, t: int, logit: torch.Tensor) -> torch.Tensor:
        """LEU (Eqs. 11-12): p = sigmoid(z/τ); le = p·E[1] + (1-p)·E[0] (row index = label)."""
        if self.training and self.options.leu_noise == "logistic":
            u = torch.rand_like(logit).clamp_(1e-6, 1 - 1e-6)
            logit = logit + torch.log(u) - torch.log1p(-u)
        p = torch.sigmoid(logit / self.tau).unsqueeze(-1)
        table = self.label_tables[t]
        return p * table[1] + (1 - p) * table[0]

    def forward_train(
        self, x: torch.Tensor, scale: torch.Tensor | None = None
    ) -> tuple[dict[str, torch.Tensor], SharedCut | None]:
        """With Eq. 15 on, each tower reads its own detached copy of e (exact, §6.1)."""
        if not self.options.stop_gradient:
            return self(x, scale), None
        rows = self.embedding.rows(x)
        e = self.embedding.lookup(rows, scale)
        inputs = [e.detach().requires_grad_(True) for _ in self.tasks.names]
        outputs = self._towers(inputs)
        return outputs, SharedCut(self.embedding.weight, rows, e, inputs, scale)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> Outputs:
        e = self.embedding(x, scale)
        return self._towers([e] * len(self.tasks.names))

    def _towers(self, inputs: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 6: tower t reads concat(IFU_rep, IFU_label, e_t); inputs[t] is tower t's e."""
        o: HTLNetOptions = self.options
        reps: list[torch.Tensor] = []
        labels: list[torch.Tensor] = []
        outputs: dict[str, torch.Tensor] = {}
        for t, name in enumerate(self.tasks.names):
            parts = []
            if t > 0 and o.use_rep_ifu:
                parts.append(self.rep_fusion[t - 1](torch.stack(reps, 1)))
            if t > 0 and o.use_leu:
                parts.append(self.label_fusion[t - 1](torch.stack(labels, 1)))
            rep = self.first_layers[t](torch.cat([*parts, inputs[t]], dim=1))
            out = squeeze_head(self.heads[t](self.rest[t](rep)))
            outputs[name] = out
            if name != self.tasks.core:
                cut = o.stop_gradient
                reps.append(rep.detach() if cut else rep)
                labels.append(self.label_embedding(t, out.detach() if cut else out))
        return outputs
