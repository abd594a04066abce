"""notebook-operator: cloud notebook instances (PAI-DSW, ModelArts) as Kubernetes resources."""

__version__ = "0.1.0"
