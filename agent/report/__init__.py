"""Showing results: scan reports (text, JSON, markdown), playbook-run reports, and the helpers
every stage uses to show a value from a host (``safe``: escaping; ``display``: one-line values).

It reads only agent.model, so any stage may use it without an import pointing up the pipeline
(tests/test_architecture.py). The review pages are agent.review's.
"""
