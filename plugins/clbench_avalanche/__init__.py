"""clbench built-in plugin ``avalanche``: Avalanche's continual-learning strategies as clbench strategies.

``--strategy avalanche.<name>`` trains with Avalanche's own loop (``strategy.train(experience)``) on
the very tensors of clbench's stream, with the model clbench's registry builds (``--model``) and the
``train`` settings (epochs, batch size, optimiser and lr through ``clbench.training.build_optimizer``,
clip, lr decay), on the CPU, seeded per task. clbench evaluates it like every other learner; with
``--set strategy.crosscheck=true`` Avalanche's own accuracy / forgetting / BWT run as well and land
in the record's ``extras.avalanche_crosscheck`` beside clbench's numbers (see
:mod:`clbench_avalanche.crosscheck` for both conventions).

Modules: :mod:`~clbench_avalanche.plugin` (registration; imports neither torch nor Avalanche),
:mod:`~clbench_avalanche.specs` (the table: options and one build function per strategy),
:mod:`~clbench_avalanche.adapter` (the one generic learner), :mod:`~clbench_avalanche.compat`
(fixes for Avalanche 0.6.0 bugs), :mod:`~clbench_avalanche.crosscheck`.

Registered (26): naive, cumulative, joint, from_scratch, ewc, si, lwf, mas, rwalk, gem, agem,
replay, gdumb, gss_greedy, mir, der, er_ace, er_aml, bic, mer, lfl, cope, cwr_star, slda, scr,
feature_replay. Notes: er_aml, lfl, cwr_star, slda, scr, feature_replay and cope use the model cut
at its last ``nn.Linear`` (checked to reproduce the model's logits, else a clear error); slda fits
streaming LDA on the features of the *untrained* model (no pretrained backbone exists here); scr
runs without image augmentations; cope follows Avalanche's online protocol (each task cut into
experiences of ``train.batch_size`` samples). Avalanche 0.6.0 bugs worked around
(:mod:`~clbench_avalanche.compat`): BiC's ``MultiStepLR(verbose=...)`` crash, ER-AML's hang on small
classes, RWalk's NaN after short tasks, CoPE's growing memory bookkeeping, FeatureReplay's shared
default criterion, and SI being silently naive on the CPU (its weight snapshots were views).
Avalanche's MIR (written for online class-incremental streams) replays only the classes absent from
an experience's last batch: on domain-incremental streams that is few or none. BiC is a
class-incremental method: where classes recur (domain-incremental streams) its distillation set is
empty and Avalanche's loss value is NaN (0 x NaN; the gradient is the replay cross-entropy alone).
``crosscheck`` is refused for joint and cope: they do not train one Avalanche experience per task,
so Avalanche's forgetting would not align with clbench's tasks.

Not registered, and why:

- ``icarl``: needs a class-incremental ``NCScenario`` (``n_classes_per_exp``, ``classes_order``) and
  assumes every class lives in one experience; clbench's domain-incremental streams repeat classes.
- ``generative_replay``: Avalanche's MlpVAE generator is hard-wired to normalised MNIST (sigmoid
  decoder followed by ``Normalize((0.1307,), (0.3081,))`` on (C, H, W) images): it fails on flat
  inputs and cannot generate unbounded ones (shifting-linear).
- ``lamaml`` (both versions): needs the ``higher`` package, not a dependency.
- ``pnn``, ``packnet``: task-aware (select a column / mask by the task label at test time; clbench
  evaluates one head without task ids); PNN also replaces clbench's model by its own columns.
- ``expert_gate``, ``ar1``, ``l2p``: pretrained AlexNet / MobileNet / ViT backbones (downloads; timm).
- ``online_naive``: naive on an online stream, redundant with naive.
- ``AETraining``, ``VAETraining``: train autoencoders, not classifiers; ``naive_object_detection``: detection.
"""
