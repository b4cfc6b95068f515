"""The render stage: the mesh renderer, crop-and-paste-back, and the render loop."""
