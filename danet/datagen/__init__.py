"""Referring-segmentation data generators: they write datasets that `danet.data` reads.

- `synthetic`: seeded synthetic scenes (`terrain` backgrounds, `objects` shapes) with referring
  expressions from the `expressions` grammar, written in the RRSIS-D and JSONL layouts;
- `phrasing`: the training paraphrases of those expressions;
- `stream`: the unbounded on-the-fly training stream (synthetic scenes with domain randomisation, and
  crops of the real training regions);
- `real`, `real_regions`: real imagery with real masks from data packages, as crops with generated
  expressions and as training/held-out regions;
- `benchmark`: the benchmark builder (synthetic scenes plus real crops) and the writer tail that the
  other builders share;
- `heldout`: a second, independent scene renderer for held-out evaluation only.

Dependencies point one way: this package imports `danet.data` (records, corpus, layout writers,
transforms), never the other way round.
"""
