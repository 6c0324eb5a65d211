using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using Postmaster.Shmem.Errors;
using Postmaster.Tests.Configuration;
using Postmaster.Workers;
using Xunit;

namespace Postmaster.Tests.Sdk;

/// <summary>
/// What worker authors can see. Postmaster.Workers (the SDK) is listed member by member in Sdk/PublicApi.txt, so any
/// change to it shows up in review; to accept one, run the tests once with <see cref="GeneratedFiles.UpdateVariable"/>=1.
/// Postmaster.Shmem (the engine) exposes only its exception types, which SDK calls throw.
/// </summary>
public sealed class PublicApiTests
{
    private static string ListPath => Path.Combine(RepositoryRoot.Path, "tests", "Postmaster.Tests", "Sdk", "PublicApi.txt");

    private static readonly string[] s_engineExceptions =
    [
        "Postmaster.Shmem.Errors.LWLockException", "Postmaster.Shmem.Errors.OsCallException",
        "Postmaster.Shmem.Errors.ShmemCorruptException", "Postmaster.Shmem.Errors.ShmemException",
    ];

    [Fact]
    public void The_engine_exposes_only_its_exception_types()
    {
        var engine = typeof(ShmemException).Assembly;
        Assert.Equal(s_engineExceptions.Order(StringComparer.Ordinal), engine.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal));
        Assert.All(s_engineExceptions, name => Assert.True(typeof(Exception).IsAssignableFrom(engine.GetType(name)), name));
    }

    [Fact]
    public void The_sdk_surface_matches_the_checked_in_list()
    {
        string expected = Render(typeof(WorkerContext).Assembly);
        string current = File.Exists(ListPath) ? File.ReadAllText(ListPath) : "";
        if (current != expected && GeneratedFiles.UpdateRequested)
        {
            File.WriteAllText(ListPath, expected);
            return;
        }
        Assert.Equal(expected, current);
    }

    [Fact]
    public void Every_sdk_type_is_in_the_sdk_namespace_and_sealed_unless_meant_to_be_implemented()
    {
        foreach (var type in typeof(WorkerContext).Assembly.GetExportedTypes())
        {
            Assert.Equal("Postmaster.Workers", type.Namespace);
            if (type.IsClass && !type.IsSealed)
                Assert.Equal(typeof(WorkerContext), type); // the one class a host (or a test double) derives from
        }
    }

    private const BindingFlags Declared = BindingFlags.DeclaredOnly | BindingFlags.Public | BindingFlags.NonPublic |
                                          BindingFlags.Instance | BindingFlags.Static;

    /// <summary>One line per public type, then its public and protected members indented, each sorted.</summary>
    private static string Render(Assembly assembly)
    {
        var nullability = new NullabilityInfoContext();
        var sb = new StringBuilder();
        foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            sb.Append(Kind(type)).Append(' ').Append(type.FullName).Append(Bases(type)).Append('\n');
            var members = type.GetMembers(Declared).Where(Visible).Select(m => Member(m, nullability)).OfType<string>();
            foreach (var line in members.Order(StringComparer.Ordinal))
                sb.Append("  ").Append(line).Append('\n');
        }
        return sb.ToString();
    }

    private static bool Visible(MemberInfo m) => m switch
    {
        MethodBase b => b.IsPublic || b.IsFamily || b.IsFamilyOrAssembly,
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => p.GetAccessors(nonPublic: true).Any(Visible),
        EventInfo e => e.AddMethod is { } add && Visible(add),
        Type t => t.IsNestedPublic || t.IsNestedFamily,
        _ => false,
    };

    private static string Kind(Type t) =>
        t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? (t.IsByRefLike ? "ref struct" : "struct")
        : t.IsAbstract && t.IsSealed ? "static class" : t.IsAbstract ? "abstract class" : t.IsSealed ? "sealed class" : "class";

    private static string Bases(Type t)
    {
        var bases = new List<string>();
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum))
            bases.Add(Name(b));
        if (t.IsEnum)
            bases.Add(Name(Enum.GetUnderlyingType(t))); // and no interfaces: every enum has the same
        else
            bases.AddRange(t.GetInterfaces().Select(Name).Order(StringComparer.Ordinal));
        return bases.Count == 0 ? "" : " : " + string.Join(", ", bases);
    }

    private static string? Member(MemberInfo m, NullabilityInfoContext n)
    {
        if (m.Name.StartsWith('<'))
            return null; // compiler-generated (a record's <Clone>$)
        string access = m switch
        {
            MethodBase b when !b.IsPublic => "protected ",
            FieldInfo f when !f.IsPublic => "protected ",
            _ => "",
        };
        switch (m)
        {
            case FieldInfo f when f.DeclaringType!.IsEnum:
                return f.IsStatic ? $"{f.Name} = {Convert.ToInt64(f.GetRawConstantValue())}" : null;
            case FieldInfo f:
                return access + (f.IsLiteral ? $"const {Name(f.FieldType)} {f.Name} = {f.GetRawConstantValue()}"
                    : $"{(f.IsStatic ? "static " : "")}{(f.IsInitOnly ? "readonly " : "")}{Type(n.Create(f))} {f.Name}");
            case ConstructorInfo c:
                return c.IsStatic ? null : $"{access}ctor({Parameters(c, n)})";
            case PropertyInfo p:
                var accessors = new List<string>();
                if (p.GetMethod is { } get && Visible(get))
                    accessors.Add((get.IsPublic ? "" : "protected ") + "get;");
                if (p.SetMethod is { } set && Visible(set))
                    accessors.Add((set.IsPublic ? "" : "protected ") +
                                  (set.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit)) ? "init;" : "set;"));
                string indexer = p.GetIndexParameters().Length == 0 ? p.Name : $"this[{string.Join(", ", p.GetIndexParameters().Select(x => Parameter(x, n)))}]";
                return $"{Modifiers(p.GetMethod ?? p.SetMethod!)}{Type(n.Create(p))} {indexer} {{ {string.Join(" ", accessors)} }}";
            case MethodInfo method when method.IsSpecialName && !method.Name.StartsWith("op_", StringComparison.Ordinal):
                return null; // property and event accessors
            case MethodInfo method:
                string generic = method.IsGenericMethodDefinition
                    ? $"<{string.Join(", ", method.GetGenericArguments().Select(a => a.Name))}>" : "";
                string returns = (method.ReturnType.IsByRef ? "ref " : "") + Type(n.Create(method.ReturnParameter));
                return $"{access}{Modifiers(method)}{returns} {method.Name}{generic}({Parameters(method, n)}){Constraints(method)}";
            case EventInfo e:
                return $"event {Name(e.EventHandlerType!)} {e.Name}";
            case Type nested:
                return $"nested {Kind(nested)} {nested.Name}";
            default:
                return null;
        }
    }

    private static string Modifiers(MethodInfo m) =>
        m.IsStatic ? "static " : m.DeclaringType!.IsInterface ? "" : m.IsAbstract ? "abstract " :
        m.IsVirtual && !m.IsFinal && m.GetBaseDefinition() == m ? "virtual " :
        m.IsVirtual && m.GetBaseDefinition() != m ? "override " : "";

    private static string Constraints(MethodInfo m) =>
        string.Concat(m.GetGenericArguments().Select(a =>
            (a.GenericParameterAttributes & GenericParameterAttributes.NotNullableValueTypeConstraint) != 0 &&
            a.GetCustomAttributesData().Any(d => d.AttributeType.Name == "IsUnmanagedAttribute")
                ? $" where {a.Name} : unmanaged" : ""));

    private static string Parameters(MethodBase m, NullabilityInfoContext n) => string.Join(", ", m.GetParameters().Select(p => Parameter(p, n)));

    private static string Parameter(ParameterInfo p, NullabilityInfoContext n)
    {
        string mode = !p.ParameterType.IsByRef ? "" : p.IsOut ? "out " : p.IsIn ? "in " : "ref ";
        string text = $"{mode}{Type(n.Create(p))} {p.Name}";
        return p.HasDefaultValue ? $"{text} = {p.DefaultValue ?? "default"}" : text;
    }

    /// <summary>A type with its nullable annotations, by short name (every SDK type is in one namespace).</summary>
    private static string Type(NullabilityInfo info)
    {
        var t = info.Type.IsByRef ? info.Type.GetElementType()! : info.Type;
        string name = t.IsGenericType && !t.IsGenericTypeDefinition && Nullable.GetUnderlyingType(t) is null
            ? $"{t.Name[..t.Name.IndexOf('`')]}<{string.Join(", ", info.GenericTypeArguments.Select(Type))}>"
            : Name(t);
        return info.ReadState == NullabilityState.Nullable && !t.IsValueType ? name + "?" : name;
    }

    private static string Name(Type t)
    {
        if (Nullable.GetUnderlyingType(t) is { } underlying)
            return Name(underlying) + "?";
        if (t.IsByRef)
            return Name(t.GetElementType()!);
        if (t.IsGenericType)
            return $"{t.Name[..t.Name.IndexOf('`')]}<{string.Join(", ", t.GetGenericArguments().Select(Name))}>";
        return s_keywords.TryGetValue(t, out var keyword) ? keyword : t.Name;
    }

    private static readonly Dictionary<Type, string> s_keywords = new()
    {
        [typeof(void)] = "void", [typeof(bool)] = "bool", [typeof(byte)] = "byte", [typeof(int)] = "int", [typeof(uint)] = "uint",
        [typeof(long)] = "long", [typeof(ulong)] = "ulong", [typeof(string)] = "string", [typeof(object)] = "object",
    };
}
