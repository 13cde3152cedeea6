using System;

namespace GraphCompiler
{
    /// <summary>A symbolic tensor inside a <see cref="ForwardAttribute"/> body. It carries no data: the generator
    /// reads the expressions that produce it and compiles them; nothing here is ever evaluated.</summary>
    public sealed class Expr
    {
        private Expr() { }

        public static Expr operator +(Expr a, Expr b) => throw Ops.NotExecutable();

        public static Expr operator -(Expr a, Expr b) => throw Ops.NotExecutable();

        public static Expr operator *(Expr a, Expr b) => throw Ops.NotExecutable();

        public static Expr operator *(Expr a, double s) => throw Ops.NotExecutable();

        public static Expr operator *(double s, Expr a) => throw Ops.NotExecutable();

        public static Expr operator /(Expr a, double s) => throw Ops.NotExecutable();

        public static Expr operator -(Expr a) => throw Ops.NotExecutable();
    }
}
