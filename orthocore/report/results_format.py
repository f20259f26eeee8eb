"""The layout of a study's ``results.json``, which the report reads.

``results.json`` schema, format :data:`RESULTS_FORMAT` (all fooling ratios and accuracies
in %, named ``*_percent`` where the name could read as a fraction; ε as fractions). The
tables are summaries over the study's seeds: each number is the mean over the seeds and,
where the seeds differ, ``<name>_min`` / ``<name>_max`` hold its extremes
(:mod:`orthocore.study.seeds`); ``per_seed`` holds each seed's own tables.

.. code-block:: text

    format, title, seeds[int], config{}, versions{}, timings{stage: seconds}, notes[str],
    data{spec, images{train, val, test}}
    models[]:   name, role (reference|ordinary|surrogate|orthogonal|private|secret), lambda,
                test_accuracy, train_seconds,
                delta{signed_mean, signed_std, abs_mean, abs_std}   (against the reference)
    transfer[]: source, target, attack, eps, fooling_percent, n
    defenses[]: target, defense (Table III label or "none"), clean_fooling_percent, attack,
                eps, fooling_percent, total
    panels{}:   gradcam_models[str], perturbation_attacks[str], perturbation_eps[float]
    security{}: eps[float], images, adaptive_lambda,
                attackers{surrogates[str], adaptive[str], adaptive_without_k[str]}  (source names)
                rows[]: target, attack, eps, fooled, total, fooling_percent
                diagnostics{target: {mean_input_gradient_norm, mean_logit_margin,
                                     black_box_only_percent[per ε], white_box_at_largest_eps_percent}}
                verdicts[]: claim, target, outcome, defended[per seed], baseline[per seed], evidence
                (null when the study ran without it)
    per_seed[]: seed, similarity[] (as models[]), transfer[], defenses[], security{} (without verdicts)
"""

# The version of results.json's layout (and of the study's stored stage results), raised
# whenever a stored field changes. 2: fooling ratios are ``fooling_percent``. 3: the models'
# accuracy is ``test_accuracy`` (what it always measured), the security evaluation holds
# the input-transformation defenses and ``white_box``, and ``data`` names the splits.
RESULTS_FORMAT = 3
