"""Rules analysts write: YAML files of conditions over the event, its enrichment and profiles.

A rule file is type-checked when it loads (:mod:`vigil.rules.loader`), compiled to closures
(:mod:`vigil.rules.expr`) over typed fields (:mod:`vigil.rules.fields`), and evaluated by a
:class:`RuleBook` after the detectors; :class:`LiveRules` keeps the book in force in sync with
its file without a restart.
"""
