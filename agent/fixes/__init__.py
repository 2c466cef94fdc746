"""The fixes: one module per fix, its FixSpec beside its planner (pure), and the explicit
catalogue in registry.py. Rules name a fix by id; planning (agent/planning) runs the planners
and renders each step through the fix's template."""
