// Op names and definitions live in the shared registry assembly.
global using GraphCompiler.Registry;
