"""LP-DS simulation: Gymnasium tasks (toy, RAI pick-and-place, mug hanging) and the `lpds` command line."""
__version__ = "0.1.0"
