"""The sharing-policy engine (DESIGN §4): pure, imports nothing from the project.

Not built yet: the Sharing policies issue adds the model, parser, validator, compiler,
evaluator and masks here. Until then ``hub.access.rules.BuiltinRules`` is in force.
"""
