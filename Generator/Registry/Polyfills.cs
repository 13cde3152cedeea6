// netstandard2.0 lacks the type that init-only setters compile against.
namespace System.Runtime.CompilerServices
{
    internal static class IsExternalInit { }
}
