package io.vgpu.core.image;

import io.vgpu.api.dto.GlobalInfo;
import io.vgpu.api.dto.KernelInfo;
import io.vgpu.api.dto.ModuleImage;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Kernel and global metadata from PTX text. Only module-level declarations are interpreted:
 * {@code .entry} signatures (parameter layout by natural alignment, as the driver packs them),
 * {@code .maxntid}/{@code .reqntid}, {@code .global}/{@code .const} variables with their
 * initialisers, and {@code .shared} declarations inside entry bodies. Instruction bodies are skipped
 * by brace matching, so unknown instructions never matter.
 */
final class PtxParser {
    /** The kernel parameter space is addressed with 16-bit offsets. */
    private static final long MAX_PARAM_BYTES = 0x10000;
    /**
     * Initialised globals become byte arrays, and a one-line initialiser can claim any size, so
     * their total is capped; a real module this large would not be sent as PTX text.
     */
    private static final long MAX_INIT_BYTES = 256L << 20;
    private static final long MAX_ALIGN = 1L << 16;
    /** Initialisers nest one level per array dimension; deeper nesting would only eat the stack. */
    private static final int MAX_INIT_NESTING = 32;

    private enum Kind { DIRECTIVE, IDENT, NUMBER, STRING, PUNCT, EOF }

    private record Token(Kind kind, String text, int start) {
        boolean is(String s) {
            return text.equals(s) && (kind == Kind.DIRECTIVE || kind == Kind.PUNCT);
        }
    }

    /** Scalar type of a declaration; FLOAT kinds encode decimal initialisers as IEEE bits. */
    private enum Scalar { INT, F32, F64, OPAQUE }

    /** The common part of a declaration: {@code .align A .v4 .f32} before the declarators. */
    private static final class Type {
        long align;
        int vector = 1;
        int size;
        Scalar scalar = Scalar.INT;
        boolean supported = true;
    }

    private record Var(String name, long size, long align, byte[] init) {
    }

    private final String src;
    private int pos;
    private Token peeked;
    private long initBytesLeft = MAX_INIT_BYTES;

    private PtxParser(String src) {
        this.src = src;
    }

    /** PTX text ends at the first NUL: fatbin entries and C strings are NUL-padded. */
    static int textLength(byte[] b, int len) {
        for (int i = 0; i < len; i++) {
            if (b[i] == 0) {
                return i;
            }
        }
        return len;
    }

    static boolean looksLikePtx(byte[] b, int len) {
        int n = textLength(b, len);
        for (int i = 0; i < n; i++) {
            int c = b[i] & 0xff;
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != 0x0b) {
                return false;
            }
        }
        String s = new String(b, 0, n, StandardCharsets.ISO_8859_1);
        return s.contains(".version") || s.contains(".target") || s.contains(".entry");
    }

    static ModuleImage parse(byte[] b, int len) throws ImageFormatException {
        int n = textLength(b, len);
        // ISO-8859-1 maps bytes 1:1, so odd bytes in comments cannot break decoding.
        return new PtxParser(new String(b, 0, n, StandardCharsets.ISO_8859_1)).parseModule();
    }

    private ModuleImage parseModule() throws ImageFormatException {
        ModuleImage m = new ModuleImage();
        m.ptx = true;
        long userConst = 0;
        boolean extern = false;
        while (true) {
            Token t = next();
            if (t.kind() == Kind.EOF) {
                break;
            }
            boolean keepLinkage = false;
            switch (t.text()) {
                case ".version", ".address_size" -> next();
                case ".target" -> {
                    do {
                        Token target = next();
                        if (m.arch == 0 && target.text().startsWith("sm_")) {
                            m.arch = leadingNumber(target.text().substring(3));
                        }
                    } while (accept(","));
                }
                case ".file" -> {
                    next();
                    next();
                    while (accept(",")) {
                        next();
                    }
                }
                case ".visible", ".weak", ".common" -> keepLinkage = true;
                case ".extern" -> {
                    extern = true;
                    keepLinkage = true;
                }
                case ".entry" -> {
                    KernelInfo k = parseEntry();
                    if (k != null && !extern) {
                        m.kernels.add(k);
                    }
                }
                case ".global", ".const" -> {
                    boolean isConst = t.text().equals(".const");
                    for (Var v : parseDeclaration(t)) {
                        if (extern) {
                            continue;
                        }
                        GlobalInfo g = new GlobalInfo();
                        g.name = v.name();
                        g.size = v.size();
                        g.init = v.init();
                        m.globals.add(g);
                        if (isConst) {
                            userConst = add(t, userConst, alignUp(t, v.size(), v.align()));
                        }
                    }
                }
                case "{" -> skipBlock();
                default -> {
                    if (t.kind() == Kind.PUNCT && !t.is(";")) {
                        throw error(t, "unexpected '" + t.text() + "' at module level");
                    }
                    if (!t.is(";")) {
                        skipStatement();
                    }
                }
            }
            if (!keepLinkage) {
                extern = false;
            }
        }
        for (KernelInfo k : m.kernels) {
            k.constSizeBytes = (int) Math.min(userConst, Integer.MAX_VALUE);
        }
        // PTX is its own virtual architecture: .target sm_70 is compute_70 code.
        m.virtualArch = m.arch;
        return m;
    }

    /** After {@code .entry}: name, parameter list, performance directives, body. Null for prototypes. */
    private KernelInfo parseEntry() throws ImageFormatException {
        Token name = next();
        if (name.kind() != Kind.IDENT) {
            throw error(name, "expected an entry name after .entry");
        }
        KernelInfo k = new KernelInfo();
        k.name = name.text();
        List<long[]> params = new ArrayList<>(); // {offset, size}
        long offset = 0;
        if (accept("(")) {
            if (!accept(")")) {
                do {
                    Token p = next();
                    if (!p.is(".param")) {
                        throw error(p, "expected .param in the parameter list of " + k.name);
                    }
                    Type type = parseType(k.name + " parameter");
                    Token pn = next();
                    if (pn.kind() != Kind.IDENT) {
                        throw error(pn, "expected a parameter name in " + k.name);
                    }
                    long count = parseParamDims(pn);
                    if (!type.supported || type.size == 0) {
                        throw error(pn, "parameter " + pn.text() + " of " + k.name + " has no known size");
                    }
                    long size = multiply(pn, (long) type.size * type.vector, count);
                    long align = type.align > 0 ? type.align : (long) type.size * type.vector;
                    offset = ImageParser.roundUp(offset, align);
                    if (size > MAX_PARAM_BYTES || offset + size > MAX_PARAM_BYTES) {
                        throw error(pn, "parameters of " + k.name + " exceed the parameter space");
                    }
                    params.add(new long[] {offset, size});
                    offset += size;
                } while (accept(","));
                expect(")", "after the parameters of " + k.name);
            }
        }
        k.paramOffsets = new int[params.size()];
        k.paramSizes = new int[params.size()];
        for (int i = 0; i < params.size(); i++) {
            k.paramOffsets[i] = (int) params.get(i)[0];
            k.paramSizes[i] = (int) params.get(i)[1];
        }
        k.paramBufferSize = (int) offset;

        while (true) {
            Token t = next();
            if (t.kind() == Kind.EOF) {
                throw error(t, "entry " + k.name + " has no body");
            }
            if (t.is(";")) {
                return null;
            }
            if (t.is("{")) {
                k.sharedSizeBytes = (int) Math.min(parseBody(), Integer.MAX_VALUE);
                return k;
            }
            if (t.is(".maxntid") || t.is(".reqntid")) {
                long threads = 1;
                do {
                    threads = CubinParser.blockSize(threads, number(next()), 1);
                } while (accept(","));
                if (threads > 0) {
                    k.maxThreadsPerBlock = (int) Math.min(k.maxThreadsPerBlock, threads);
                }
            } else if (t.is(".pragma")) {
                next();
                accept(";");
            }
            // Other performance directives (.minnctapersm, .maxnreg, cluster shapes) and their
            // numbers do not affect the metadata.
        }
    }

    /** Skips an entry body (its '{' consumed), adding up its static {@code .shared} declarations. */
    private long parseBody() throws ImageFormatException {
        long shared = 0;
        int depth = 1;
        boolean extern = false;
        while (depth > 0) {
            Token t = next();
            if (t.kind() == Kind.EOF) {
                throw error(t, "unterminated entry body");
            }
            if (t.is("{")) {
                depth++;
            } else if (t.is("}")) {
                depth--;
            } else if (t.is(".shared")) {
                for (Var v : parseDeclaration(t)) {
                    // extern .shared is the dynamic window, sized at launch.
                    if (!extern) {
                        shared = add(t, alignUp(t, shared, v.align()), v.size());
                    }
                }
            }
            extern = t.is(".extern");
        }
        return shared;
    }

    /** {@code .align A .v2 .f32 name[N] = {...}, other;} after the state space; consumes the ';'. */
    private List<Var> parseDeclaration(Token space) throws ImageFormatException {
        Type type = parseType(space.text() + " variable");
        List<Var> vars = new ArrayList<>();
        while (true) {
            Token name = next();
            if (name.kind() != Kind.IDENT) {
                throw error(name, "expected a variable name in a " + space.text() + " declaration");
            }
            boolean hasInit = false;
            long dimsRest = 1;
            long count;
            List<Token[]> leaves = null;
            // Dimensions may be left open ("[]") when an initialiser follows.
            long[] dims = parseDimList(name);
            for (int i = 1; i < dims.length; i++) {
                dimsRest = multiply(name, dimsRest, dims[i]);
            }
            if (accept("=")) {
                hasInit = true;
                leaves = new ArrayList<>();
                parseInitialiser(leaves, 0);
            }
            long elementsPerRow = multiply(name, dimsRest, type.vector);
            if (dims.length > 0 && dims[0] < 0) {
                if (leaves == null || elementsPerRow == 0) {
                    count = 0;
                } else {
                    count = (leaves.size() + elementsPerRow - 1) / elementsPerRow * dimsRest;
                }
            } else {
                count = dims.length == 0 ? 1 : multiply(name, dims[0], dimsRest);
            }
            if (type.supported && type.size > 0) {
                long size = multiply(name, multiply(name, count, type.vector), type.size);
                long align = type.align > 0 ? type.align : (long) type.size * type.vector;
                byte[] init = hasInit ? encode(name, type, size, leaves) : null;
                vars.add(new Var(name.text(), size, align, init));
            }
            if (accept(";")) {
                return vars;
            }
            expect(",", "between declarators of " + name.text());
        }
    }

    /** Directives before a name: alignment, vector width, scalar type, pointer attributes. */
    private Type parseType(String what) throws ImageFormatException {
        Type type = new Type();
        boolean afterPtr = false;
        while (peek().kind() == Kind.DIRECTIVE) {
            Token t = next();
            switch (t.text()) {
                case ".align" -> {
                    long a = number(next());
                    if (a <= 0 || a > MAX_ALIGN || Long.bitCount(a) != 1) {
                        throw error(t, "bad alignment " + a + " in " + what);
                    }
                    // After .ptr the alignment describes the pointee, not the parameter.
                    if (!afterPtr) {
                        type.align = a;
                    }
                }
                case ".ptr" -> afterPtr = true;
                case ".v2" -> type.vector = 2;
                case ".v4" -> type.vector = 4;
                case ".v8" -> type.vector = 8;
                case ".attribute" -> skipParenthesised();
                case ".global", ".const", ".local", ".shared", ".param" -> {
                    // state space of a .ptr parameter
                }
                default -> {
                    int size = scalarSize(t.text());
                    if (size > 0) {
                        type.size = size;
                        type.scalar = switch (t.text()) {
                            case ".f32" -> Scalar.F32;
                            case ".f64" -> Scalar.F64;
                            case ".b8", ".u8", ".s8", ".b16", ".u16", ".s16", ".b32", ".u32", ".s32",
                                ".b64", ".u64", ".s64", ".pred" -> Scalar.INT;
                            default -> Scalar.OPAQUE;
                        };
                    } else {
                        // .texref, .samplerref, .surfref and unknown types: no byte layout we know.
                        type.supported = false;
                    }
                }
            }
        }
        return type;
    }

    private static int scalarSize(String t) {
        return switch (t) {
            case ".b8", ".u8", ".s8", ".pred", ".e4m3", ".e5m2" -> 1;
            case ".b16", ".u16", ".s16", ".f16", ".bf16", ".e4m3x2", ".e5m2x2" -> 2;
            case ".b32", ".u32", ".s32", ".f32", ".f16x2", ".bf16x2", ".tf32" -> 4;
            case ".b64", ".u64", ".s64", ".f64" -> 8;
            case ".b128" -> 16;
            default -> 0;
        };
    }

    /** Element count of a parameter's {@code [N][M]}; parameters cannot have open dimensions. */
    private long parseParamDims(Token name) throws ImageFormatException {
        long count = 1;
        for (long d : parseDimList(name)) {
            if (d < 0) {
                throw error(name, "parameter " + name.text() + " has an open array dimension");
            }
            count = multiply(name, count, d);
        }
        return count;
    }

    private long[] parseDimList(Token name) throws ImageFormatException {
        List<Long> dims = new ArrayList<>();
        while (accept("[")) {
            if (accept("]")) {
                if (!dims.isEmpty()) {
                    throw error(name, "only the first dimension of " + name.text() + " may be open");
                }
                dims.add(-1L);
                continue;
            }
            long d = number(next());
            if (d < 0) {
                throw error(name, "negative dimension for " + name.text());
            }
            dims.add(d);
            expect("]", "after a dimension of " + name.text());
        }
        long[] out = new long[dims.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = dims.get(i);
        }
        return out;
    }

    /** Flattens {@code {{1, 2}, {3, 4}}} or a single value into leaf expressions. */
    private void parseInitialiser(List<Token[]> leaves, int depth) throws ImageFormatException {
        if (accept("{")) {
            if (depth >= MAX_INIT_NESTING) {
                throw error(peek(), "initialiser nested too deeply");
            }
            if (accept("}")) {
                return;
            }
            do {
                parseInitialiser(leaves, depth + 1);
            } while (accept(","));
            expect("}", "closing an initialiser");
            return;
        }
        List<Token> leaf = new ArrayList<>();
        int parens = 0;
        while (true) {
            Token t = peek();
            if (t.kind() == Kind.EOF) {
                throw error(t, "unterminated initialiser");
            }
            if (parens == 0 && (t.is(",") || t.is("}") || t.is(";"))) {
                break;
            }
            if (t.is("(")) {
                parens++;
            } else if (t.is(")")) {
                parens--;
            }
            leaf.add(next());
        }
        if (leaf.isEmpty()) {
            throw error(peek(), "empty initialiser element");
        }
        leaves.add(leaf.toArray(new Token[0]));
    }

    /**
     * Initial bytes in the element type. Address expressions ({@code generic(x)}, {@code x+8}) are
     * relocations a loader fills in; they stay zero here, as in the cubin's data.
     */
    private byte[] encode(Token name, Type type, long size, List<Token[]> leaves) throws ImageFormatException {
        if (size > initBytesLeft) {
            throw error(name, "initialised global " + name.text() + " of " + size
                    + " bytes takes the module's initialised data over " + MAX_INIT_BYTES + " bytes");
        }
        initBytesLeft -= size;
        byte[] out = new byte[(int) size];
        if ((long) leaves.size() * type.size > size) {
            throw error(name, "too many initialisers for " + name.text());
        }
        for (int i = 0; i < leaves.size(); i++) {
            Token[] leaf = leaves.get(i);
            boolean negative = leaf.length == 2 && leaf[0].is("-");
            Token lit = leaf.length == 1 ? leaf[0] : negative ? leaf[1] : null;
            if (lit == null || lit.kind() != Kind.NUMBER || type.scalar == Scalar.OPAQUE) {
                continue;
            }
            long bits = literalBits(lit, type.scalar, negative);
            for (int b = 0; b < type.size && b < 8; b++) {
                out[i * type.size + b] = (byte) (bits >>> (8 * b));
            }
        }
        return out;
    }

    /** The literal's bit pattern in the given scalar kind, little end first. */
    private long literalBits(Token lit, Scalar scalar, boolean negative) throws ImageFormatException {
        String s = lit.text();
        String lower = s.toLowerCase();
        try {
            if (lower.startsWith("0f") && s.length() == 10) {
                float f = Float.intBitsToFloat((int) Long.parseLong(s.substring(2), 16));
                f = negative ? -f : f;
                return scalar == Scalar.F64 ? Double.doubleToLongBits(f) : Float.floatToIntBits(f) & 0xffffffffL;
            }
            if (lower.startsWith("0d") && s.length() == 18) {
                double d = Double.longBitsToDouble(Long.parseUnsignedLong(s.substring(2), 16));
                d = negative ? -d : d;
                return scalar == Scalar.F32 ? Float.floatToIntBits((float) d) & 0xffffffffL : Double.doubleToLongBits(d);
            }
            boolean isFloat = !lower.startsWith("0x") && (lower.contains(".") || lower.contains("e"));
            if (isFloat || scalar != Scalar.INT) {
                double d = isFloat ? Double.parseDouble(s) : integerValue(lower);
                d = negative ? -d : d;
                return switch (scalar) {
                    case F32 -> Float.floatToIntBits((float) d) & 0xffffffffL;
                    case F64 -> Double.doubleToLongBits(d);
                    default -> (long) d;
                };
            }
            long v = integerValue(lower);
            return negative ? -v : v;
        } catch (NumberFormatException e) {
            throw error(lit, "bad numeric literal '" + s + "'");
        }
    }

    /** PTX integer literals: decimal, 0x hex, 0b binary, 0-prefixed octal, optional U suffix. */
    private static long integerValue(String lower) {
        String s = lower.endsWith("u") ? lower.substring(0, lower.length() - 1) : lower;
        if (s.startsWith("0x")) {
            return Long.parseUnsignedLong(s.substring(2), 16);
        }
        if (s.startsWith("0b")) {
            return Long.parseUnsignedLong(s.substring(2), 2);
        }
        if (s.length() > 1 && s.startsWith("0")) {
            return Long.parseUnsignedLong(s.substring(1), 8);
        }
        return Long.parseUnsignedLong(s);
    }

    private long number(Token t) throws ImageFormatException {
        if (t.kind() != Kind.NUMBER) {
            throw error(t, "expected a number, found '" + t.text() + "'");
        }
        try {
            long v = integerValue(t.text().toLowerCase());
            if (v < 0) {
                throw error(t, "number " + t.text() + " is too large");
            }
            return v;
        } catch (NumberFormatException e) {
            throw error(t, "expected an integer, found '" + t.text() + "'");
        }
    }

    private static int leadingNumber(String s) {
        int v = 0;
        for (int i = 0; i < s.length() && i < 6 && Character.isDigit(s.charAt(i)); i++) {
            v = v * 10 + (s.charAt(i) - '0');
        }
        return v;
    }

    private long multiply(Token at, long a, long b) throws ImageFormatException {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw error(at, "size of " + at.text() + " overflows");
        }
    }

    private long add(Token at, long a, long b) throws ImageFormatException {
        try {
            return Math.addExact(a, b);
        } catch (ArithmeticException e) {
            throw error(at, "sizes overflow");
        }
    }

    private long alignUp(Token at, long v, long alignment) throws ImageFormatException {
        try {
            return ImageParser.roundUp(v, Math.max(1, alignment));
        } catch (ArithmeticException e) {
            throw error(at, "sizes overflow");
        }
    }

    private void skipParenthesised() throws ImageFormatException {
        expect("(", "after .attribute");
        int depth = 1;
        while (depth > 0) {
            Token t = next();
            if (t.kind() == Kind.EOF) {
                throw error(t, "unterminated parenthesis");
            }
            depth += t.is("(") ? 1 : t.is(")") ? -1 : 0;
        }
    }

    /** Skips to the end of a statement: a ';' outside parentheses, or a complete {...} body. */
    private void skipStatement() throws ImageFormatException {
        int parens = 0;
        while (true) {
            Token t = next();
            if (t.kind() == Kind.EOF) {
                return;
            }
            if (t.is("(")) {
                parens++;
            } else if (t.is(")")) {
                parens--;
            } else if (parens <= 0 && t.is(";")) {
                return;
            } else if (t.is("{")) {
                skipBlock();
                return;
            }
        }
    }

    private void skipBlock() throws ImageFormatException {
        int depth = 1;
        while (depth > 0) {
            Token t = next();
            if (t.kind() == Kind.EOF) {
                throw error(t, "unterminated block");
            }
            depth += t.is("{") ? 1 : t.is("}") ? -1 : 0;
        }
    }

    // ---- lexer ----

    private boolean accept(String punct) throws ImageFormatException {
        if (peek().is(punct)) {
            next();
            return true;
        }
        return false;
    }

    private void expect(String punct, String where) throws ImageFormatException {
        Token t = next();
        if (!t.is(punct)) {
            throw error(t, "expected '" + punct + "' " + where + ", found '" + t.text() + "'");
        }
    }

    private Token peek() throws ImageFormatException {
        if (peeked == null) {
            peeked = lex();
        }
        return peeked;
    }

    private Token next() throws ImageFormatException {
        Token t = peek();
        peeked = null;
        return t;
    }

    private Token lex() throws ImageFormatException {
        skipSpaceAndComments();
        int n = src.length();
        if (pos >= n) {
            return new Token(Kind.EOF, "<end of PTX>", pos);
        }
        int start = pos;
        char c = src.charAt(pos);
        if (c == '"') {
            pos++;
            while (pos < n && src.charAt(pos) != '"') {
                pos += src.charAt(pos) == '\\' ? 2 : 1;
            }
            if (pos >= n) {
                throw error(new Token(Kind.STRING, "", start), "unterminated string");
            }
            pos++;
            return new Token(Kind.STRING, src.substring(start, pos), start);
        }
        if (c == '.' && pos + 1 < n && isIdentStart(src.charAt(pos + 1))) {
            // Directives stop at the next dot, so ".ptr.global.align" reads as three.
            pos++;
            while (pos < n && isIdentPart(src.charAt(pos))) {
                pos++;
            }
            return new Token(Kind.DIRECTIVE, src.substring(start, pos), start);
        }
        if (isIdentStart(c) || c == '%') {
            // Instruction names keep their dots ("ld.param.u64") so they never look like directives.
            while (pos < n && (isIdentPart(src.charAt(pos)) || src.charAt(pos) == '.' || src.charAt(pos) == '%')) {
                pos++;
            }
            return new Token(Kind.IDENT, src.substring(start, pos), start);
        }
        if (Character.isDigit(c)) {
            while (pos < n) {
                char d = src.charAt(pos);
                if (Character.isLetterOrDigit(d) || d == '.') {
                    pos++;
                } else if ((d == '+' || d == '-') && isExponentSign(start, pos)) {
                    pos++;
                } else {
                    break;
                }
            }
            return new Token(Kind.NUMBER, src.substring(start, pos), start);
        }
        pos++;
        return new Token(Kind.PUNCT, String.valueOf(c), start);
    }

    /** A sign continues a decimal float literal only right after its exponent marker. */
    private boolean isExponentSign(int start, int at) {
        char prev = src.charAt(at - 1);
        if (prev != 'e' && prev != 'E') {
            return false;
        }
        String lit = src.substring(start, at).toLowerCase();
        return !lit.startsWith("0x") && !lit.startsWith("0f") && !lit.startsWith("0d");
    }

    private void skipSpaceAndComments() {
        int n = src.length();
        while (pos < n) {
            char c = src.charAt(pos);
            if (Character.isWhitespace(c)) {
                pos++;
            } else if (c == '/' && pos + 1 < n && src.charAt(pos + 1) == '/') {
                while (pos < n && src.charAt(pos) != '\n') {
                    pos++;
                }
            } else if (c == '/' && pos + 1 < n && src.charAt(pos + 1) == '*') {
                int end = src.indexOf("*/", pos + 2);
                pos = end < 0 ? n : end + 2;
            } else {
                return;
            }
        }
    }

    private static boolean isIdentStart(char c) {
        return c < 0x80 && (Character.isLetter(c) || c == '_' || c == '$');
    }

    private static boolean isIdentPart(char c) {
        return c < 0x80 && (Character.isLetterOrDigit(c) || c == '_' || c == '$');
    }

    private ImageFormatException error(Token at, String message) {
        int line = 1;
        for (int i = 0; i < Math.min(at.start(), src.length()); i++) {
            if (src.charAt(i) == '\n') {
                line++;
            }
        }
        return new ImageFormatException("PTX line " + line + ": " + message);
    }
}
