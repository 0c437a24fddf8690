"""The experiments: side-by-side runs and their tables (``compare``), hyper-parameter
search (``tune``), a setting swept over values (``sweep``), clean against noisy profiles
(``noise``) and what UMI attends to (``interpret``).

They use only the public functions of the layers below (``recbole_umi.run``, ``load``,
``Config``, the registry, :mod:`recbole_umi.stats`); their commands keep the paths README
gives them, ``python -m recbole_umi.compare`` and the like (thin modules at the package's
top that run the ``main`` of each module here).
"""
