"""The parts of :mod:`recbole_umi.checkpoint`, one concern each (that module is the public
API and says what a checkpoint holds):

- :mod:`~recbole_umi.checkpoints.format`: the file: plain data, digest, weights-only
  reading, the reasons a file is refused;
- :mod:`~recbole_umi.checkpoints.content`: what a checkpoint records and putting it back:
  config, dataset ids, random states, model state;
- :mod:`~recbole_umi.checkpoints.trainer`: the trainer mixin that saves and resumes;
- :mod:`~recbole_umi.checkpoints.loading`: ``load``, ``evaluate_checkpoint``,
  ``checkpoint_config``;
- :mod:`~recbole_umi.checkpoints.recbole_format`: the conversion of RecBole's pickled
  format, already loaded by the user (recbole-umi itself reads every file weights-only).

Importing this package imports nothing: ``format`` and ``content`` stay free of RecBole.
"""
