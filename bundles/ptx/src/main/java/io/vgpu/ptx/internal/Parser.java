package io.vgpu.ptx.internal;

import io.vgpu.ptx.PtxException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Parses PTX text into an {@link Ast.Module}. Names declared in nested blocks (the call sequences
 * nvcc writes reuse {@code param0} in every block) are renamed to unique names, so the compiler
 * sees one flat scope per function.
 */
public final class Parser {
    private final char[] s;
    private int pos;
    private int line = 1;
    // One token of lookahead.
    private String tok;
    private int tokLine;
    private int scopeCounter;
    private final Deque<Map<String, String>> scopes = new ArrayDeque<>();
    /** Registers declared without a leading %, as inline asm writes them ({.reg .f16 low, high; ...}). */
    private final java.util.Set<String> plainRegs = new java.util.HashSet<>();

    private Parser(String text) {
        this.s = text.toCharArray();
        advance();
    }

    public static Ast.Module parse(String text) throws PtxException {
        Parser p = new Parser(text);
        try {
            return p.module();
        } catch (RuntimeException e) {
            throw new PtxException("PTX line " + p.tokLine + ": " + e.getMessage());
        }
    }

    // ------------------------------------------------------------------ lexer

    private static boolean wordChar(char c) {
        return Character.isLetterOrDigit(c) || c == '_' || c == '.' || c == '%' || c == '$';
    }

    private void advance() {
        for (;;) {
            while (pos < s.length && Character.isWhitespace(s[pos])) {
                if (s[pos] == '\n') {
                    line++;
                }
                pos++;
            }
            if (pos + 1 < s.length && s[pos] == '/' && s[pos + 1] == '/') {
                while (pos < s.length && s[pos] != '\n') {
                    pos++;
                }
                continue;
            }
            if (pos + 1 < s.length && s[pos] == '/' && s[pos + 1] == '*') {
                pos += 2;
                while (pos + 1 < s.length && !(s[pos] == '*' && s[pos + 1] == '/')) {
                    if (s[pos] == '\n') {
                        line++;
                    }
                    pos++;
                }
                pos += 2;
                continue;
            }
            break;
        }
        tokLine = line;
        if (pos >= s.length || s[pos] == 0) {
            tok = null;
            return;
        }
        int start = pos;
        char c = s[pos];
        if (c == '"') {
            pos++;
            while (pos < s.length && s[pos] != '"') {
                if (s[pos] == '\\') {
                    pos++;
                }
                pos++;
            }
            pos++;
        } else if (c == '.') {
            // A directive or attribute: ".reg.b32" (inline asm writes them run together) is two tokens.
            pos++;
            while (pos < s.length && wordChar(s[pos]) && s[pos] != '.') {
                pos++;
            }
        } else if (wordChar(c)) {
            while (pos < s.length && wordChar(s[pos])) {
                pos++;
            }
            // '::' joins the parts of a modifier (.L2::cache_hint, .shared::cta); a label has one ':'.
            while (pos + 2 < s.length && s[pos] == ':' && s[pos + 1] == ':' && wordChar(s[pos + 2])) {
                pos += 2;
                while (pos < s.length && wordChar(s[pos])) {
                    pos++;
                }
            }
            // 1e-5 style exponents
            if (pos < s.length && (s[pos] == '-' || s[pos] == '+') && Character.isDigit(c)
                    && (s[pos - 1] == 'e' || s[pos - 1] == 'E') && !(s[start + 1] == 'x' || s[start + 1] == 'X')
                    && !(s[start + 1] == 'f' || s[start + 1] == 'F' || s[start + 1] == 'd' || s[start + 1] == 'D')) {
                pos++;
                while (pos < s.length && Character.isDigit(s[pos])) {
                    pos++;
                }
            }
        } else {
            pos++;
        }
        tok = new String(s, start, pos - start);
    }

    private String next() {
        String t = tok;
        if (t == null) {
            throw new IllegalStateException("unexpected end of PTX");
        }
        advance();
        return t;
    }

    private boolean accept(String t) {
        if (t.equals(tok)) {
            advance();
            return true;
        }
        return false;
    }

    private void expect(String t) {
        if (!t.equals(tok)) {
            throw new IllegalStateException("expected '" + t + "' but found '" + tok + "'");
        }
        advance();
    }

    private void skipPast(String t) {
        int depth = 0;
        while (tok != null) {
            String x = next();
            if (x.equals("{")) {
                depth++;
            } else if (x.equals("}")) {
                depth--;
            } else if (x.equals(t) && depth <= 0) {
                return;
            }
        }
    }

    // ------------------------------------------------------------------ module

    private Ast.Module module() {
        Ast.Module m = new Ast.Module();
        while (tok != null) {
            String t = tok;
            switch (t) {
                case ".version": {
                    next();
                    String v = next();
                    String[] parts = v.split("\\.");
                    m.version = Integer.parseInt(parts[0]) * 10 + (parts.length > 1 ? Integer.parseInt(parts[1]) : 0);
                    break;
                }
                case ".target": {
                    next();
                    String target = next();
                    if (target.startsWith("sm_")) {
                        m.target = Integer.parseInt(target.substring(3).replaceAll("[^0-9]", ""));
                    }
                    while (accept(",")) {
                        next();
                    }
                    break;
                }
                case ".address_size":
                    next();
                    next();
                    break;
                case ".file":
                    next();
                    next();
                    next();
                    while (accept(",")) {
                        next();
                    }
                    break;
                case ".section":
                    next();
                    next();
                    if ("{".equals(tok)) {
                        skipBraces();
                    }
                    break;
                case ".pragma":
                    skipPast(";");
                    break;
                case "{":
                    skipBraces();
                    break;
                default:
                    topLevel(m);
            }
        }
        return m;
    }

    private void skipBraces() {
        expect("{");
        int depth = 1;
        while (depth > 0) {
            String x = next();
            if (x.equals("{")) {
                depth++;
            } else if (x.equals("}")) {
                depth--;
            }
        }
    }

    private void topLevel(Ast.Module m) {
        boolean extern = false;
        for (;;) {
            if (accept(".visible") || accept(".weak") || accept(".common")) {
                continue;
            }
            if (accept(".extern")) {
                extern = true;
                continue;
            }
            break;
        }
        String t = tok;
        if (".entry".equals(t) || ".func".equals(t)) {
            m.funcs.add(function(m));
        } else if (".global".equals(t) || ".const".equals(t) || ".shared".equals(t) || ".local".equals(t)
                || ".tex".equals(t) || ".surfref".equals(t) || ".texref".equals(t) || ".samplerref".equals(t)) {
            for (Ast.Var v : varDecl(next().substring(1))) {
                v.extern = extern;
                m.vars.add(v);
            }
        } else if (".alias".equals(t)) {
            skipPast(";");
        } else {
            throw new IllegalStateException("unexpected '" + t + "' at module level");
        }
    }

    /** After the state space: attributes, a type, names (register ranges, arrays), initialisers. */
    private List<Ast.Var> varDecl(String space) {
        Ast.Var proto = new Ast.Var();
        proto.space = space;
        proto.line = tokLine;
        attributes(proto);
        List<Ast.Var> out = new ArrayList<>();
        for (;;) {
            String name = next();
            if ("<".equals(tok)) {
                next();
                int n = Integer.parseInt(next());
                expect(">");
                for (int i = 0; i < n; i++) {
                    out.add(copy(proto, name + i));
                }
            } else {
                Ast.Var v = copy(proto, name);
                while (accept("[")) {
                    long n = 0;
                    if (!"]".equals(tok)) {
                        n = Long.decode(next());
                    }
                    expect("]");
                    v.count = v.count < 0 ? n : v.count * n;
                }
                out.add(v);
            }
            if (accept("=")) {
                // Initialisers are applied by the loader from the image metadata; skip them here.
                int depth = 0;
                while (!(depth == 0 && (",".equals(tok) || ";".equals(tok)))) {
                    String x = next();
                    if (x.equals("{")) {
                        depth++;
                    } else if (x.equals("}")) {
                        depth--;
                    }
                }
            }
            if (!accept(",")) {
                break;
            }
        }
        expect(";");
        return out;
    }

    private void attributes(Ast.Var v) {
        while (tok != null && tok.startsWith(".")) {
            String a = next().substring(1);
            if (a.equals("align")) {
                v.align = Integer.decode(next());
            } else if (a.equals("v2")) {
                v.vector = 2;
            } else if (a.equals("v4")) {
                v.vector = 4;
            } else if (a.equals("v8")) {
                v.vector = 8;
            } else if (Types.isType(a)) {
                v.type = a;
            } else if (a.equals("ptr")) {
                // .ptr .global .align N: pointer attributes of a kernel parameter
                while (tok != null && tok.startsWith(".") && !Types.isType(tok.substring(1))) {
                    String b = next();
                    if (b.equals(".align")) {
                        next();
                    }
                }
            }
            // other attributes (.attribute(...), .managed, .unified) are ignored
        }
        if (v.type == null) {
            v.type = "b8";
        }
    }

    private static Ast.Var copy(Ast.Var p, String name) {
        Ast.Var v = new Ast.Var();
        v.space = p.space;
        v.type = p.type;
        v.align = p.align;
        v.vector = p.vector;
        v.count = p.count;
        v.name = name;
        v.line = p.line;
        return v;
    }

    private List<Ast.Var> paramList(String space) {
        List<Ast.Var> out = new ArrayList<>();
        expect("(");
        while (!accept(")")) {
            String sp = next();
            if (!sp.equals(".param") && !sp.equals(".reg")) {
                throw new IllegalStateException("expected .param in a parameter list, found " + sp);
            }
            Ast.Var v = new Ast.Var();
            v.space = space;
            v.line = tokLine;
            attributes(v);
            v.name = next();
            while (accept("[")) {
                long n = Long.decode(next());
                expect("]");
                v.count = v.count < 0 ? n : v.count * n;
            }
            out.add(v);
            accept(",");
        }
        return out;
    }

    private Ast.Func function(Ast.Module m) {
        Ast.Func f = new Ast.Func();
        f.entry = next().equals(".entry");
        f.line = tokLine;
        if (!f.entry && "(".equals(tok)) {
            f.returns = paramList("param");
        }
        f.name = next();
        if ("(".equals(tok)) {
            f.params = paramList("param");
        }
        // performance directives and .noreturn
        while (tok != null && tok.startsWith(".")) {
            String d = next();
            if (d.equals(".maxntid") || d.equals(".reqntid")) {
                int prod = Integer.parseInt(next());
                while (accept(",")) {
                    prod *= Integer.parseInt(next());
                }
                f.maxntid = prod;
            } else if (d.equals(".minnctapersm") || d.equals(".maxnreg") || d.equals(".maxnctapersm")
                    || d.equals(".reqnctapercluster") || d.equals(".maxclusterrank") || d.equals(".explicitcluster")) {
                if (tok != null && !tok.startsWith(".") && !tok.equals("{") && !tok.equals(";")) {
                    next();
                    while (accept(",")) {
                        next();
                    }
                }
            } else if (d.equals(".pragma")) {
                skipPast(";");
            }
        }
        if (accept(";")) {
            return f;
        }
        f.defined = true;
        expect("{");
        scopes.clear();
        scopes.push(new HashMap<>());
        body(f);
        return f;
    }

    private String declare(String name) {
        if (scopes.size() <= 1) {
            return name;
        }
        String unique = name + "#" + (++scopeCounter);
        scopes.peek().put(name, unique);
        return unique;
    }

    private String resolve(String name) {
        for (Map<String, String> sc : scopes) {
            String u = sc.get(name);
            if (u != null) {
                return u;
            }
        }
        return name;
    }

    private void body(Ast.Func f) {
        for (;;) {
            String t = tok;
            if (t == null) {
                throw new IllegalStateException("function " + f.name + " is not closed");
            }
            if (t.equals("}")) {
                next();
                scopes.pop();
                if (scopes.isEmpty()) {
                    return;
                }
                continue;
            }
            if (t.equals("{")) {
                next();
                scopes.push(new HashMap<>());
                continue;
            }
            if (t.equals(".reg") || t.equals(".local") || t.equals(".shared") || t.equals(".param")) {
                next();
                for (Ast.Var v : varDecl(t.substring(1))) {
                    v.name = declare(v.name);
                    if (t.equals(".reg") && !v.name.startsWith("%")) {
                        plainRegs.add(v.name);
                    }
                    f.locals.add(v);
                }
                continue;
            }
            if (t.equals(".pragma") || t.equals(".loc") || t.equals(".file")) {
                if (t.equals(".pragma")) {
                    skipPast(";");
                } else {
                    // .loc 1 23 4 [, function_name ...] has no semicolon: skip to the end of the line
                    int l = tokLine;
                    next();
                    while (tok != null && tokLine == l) {
                        next();
                    }
                }
                continue;
            }
            if (t.startsWith(".")) {
                skipPast(";");
                continue;
            }
            Ast.Insn in = new Ast.Insn();
            in.line = tokLine;
            if (accept("@")) {
                if (accept("!")) {
                    in.guardNegated = true;
                }
                in.guard = resolve(next());
            }
            String word = next();
            if (":".equals(tok) && in.guard == null) {
                next();
                in.label = word;
                f.body.add(in);
                continue;
            }
            String[] parts = word.split("\\.");
            in.opcode = parts[0];
            for (int i = 1; i < parts.length; i++) {
                in.mods.add(parts[i]);
            }
            if (!accept(";")) {
                for (;;) {
                    Ast.Operand o = operand();
                    if (accept("|")) {
                        Ast.Operand pair = new Ast.Operand();
                        pair.kind = Ast.Kind.VEC;
                        pair.elements = new ArrayList<>(List.of(o, operand()));
                        o = pair;
                    }
                    in.operands.add(o);
                    if (accept(";")) {
                        break;
                    }
                    expect(",");
                }
            }
            f.body.add(in);
        }
    }

    private Ast.Operand operand() {
        Ast.Operand o = new Ast.Operand();
        if (accept("{") || ("(".equals(tok) && next() != null)) {
            o.kind = Ast.Kind.VEC;
            o.elements = new ArrayList<>();
            while (!accept("}") && !accept(")")) {
                o.elements.add(operand());
                accept(",");
            }
            return o;
        }
        if (accept("[")) {
            o.kind = Ast.Kind.ADDR;
            if (!"]".equals(tok)) {
                if (isNumberStart(tok) || "-".equals(tok)) {
                    o.value = signedNumber();
                } else {
                    String base = next();
                    o.name = resolve(base);
                    o.baseIsReg = base.startsWith("%") || plainRegs.contains(o.name);
                    while ("+".equals(tok) || "-".equals(tok)) {
                        boolean neg = next().equals("-");
                        long v = signedNumber();
                        o.value += neg ? -v : v;
                    }
                }
            }
            expect("]");
            return o;
        }
        if (accept("!")) {
            Ast.Operand r = operand();
            r.negated = true;
            return r;
        }
        if ("_".equals(tok)) {
            next();
            o.kind = Ast.Kind.SINK;
            return o;
        }
        if (isNumberStart(tok) || "-".equals(tok)) {
            String t = tok;
            if (t.length() > 2 && (t.charAt(1) == 'f' || t.charAt(1) == 'F') && t.charAt(0) == '0') {
                next();
                o.kind = Ast.Kind.FIMM;
                o.value = Long.parseLong(t.substring(2), 16);
                return o;
            }
            if (t.length() > 2 && (t.charAt(1) == 'd' || t.charAt(1) == 'D') && t.charAt(0) == '0') {
                next();
                o.kind = Ast.Kind.DIMM;
                o.value = Long.parseUnsignedLong(t.substring(2), 16);
                return o;
            }
            boolean neg = accept("-");
            String n = next();
            if ((n.contains(".") || n.contains("e") || n.contains("E")) && !n.startsWith("0x") && !n.startsWith("0X")) {
                o.kind = Ast.Kind.DIMM;
                double d = Double.parseDouble(n);
                o.value = Double.doubleToRawLongBits(neg ? -d : d);
                return o;
            }
            o.kind = Ast.Kind.IMM;
            long v = number(n);
            o.value = neg ? -v : v;
            return o;
        }
        String name = next();
        if (name.startsWith("%") || plainRegs.contains(resolve(name))) {
            o.kind = Ast.Kind.REG;
            o.name = resolve(name);
            return o;
        }
        o.kind = Ast.Kind.SYM;
        o.name = resolve(name);
        if ("+".equals(tok)) {
            next();
            o.value = signedNumber();
        }
        return o;
    }

    private static boolean isNumberStart(String t) {
        return t != null && !t.isEmpty() && Character.isDigit(t.charAt(0));
    }

    private long signedNumber() {
        boolean neg = accept("-");
        long v = number(next());
        return neg ? -v : v;
    }

    static long number(String n) {
        String t = n;
        if (t.endsWith("U") || t.endsWith("u")) {
            t = t.substring(0, t.length() - 1);
        }
        if (t.startsWith("0x") || t.startsWith("0X")) {
            return Long.parseUnsignedLong(t.substring(2), 16);
        }
        if (t.startsWith("0b") || t.startsWith("0B")) {
            return Long.parseUnsignedLong(t.substring(2), 2);
        }
        if (t.length() > 1 && t.startsWith("0")) {
            return Long.parseUnsignedLong(t.substring(1), 8);
        }
        return Long.parseUnsignedLong(t);
    }
}
