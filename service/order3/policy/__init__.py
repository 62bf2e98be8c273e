"""The policy engine: Open Policy Agent, reached over its REST API, and its supervision.

OPA is the only evaluator. The service never decides an approval in Python; it asks OPA and
refuses the action when OPA gives no usable answer.
"""
