// Pure Kotlin (JVM): no Android imports, so it builds and tests anywhere with a JDK. The app depends on it.
// `./gradlew :postprocess:goldenTest` runs the same harness as tests/test_android_logic.py (kotlinc + java).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation(libs.kotlin.test)
}

val goldenTest by tasks.registering(JavaExec::class) {
    group = "verification"
    description = "Runs the port against the golden vectors in ../../tests/golden (made by `python -m slfm.golden`)."
    classpath = sourceSets["test"].runtimeClasspath
    mainClass.set("org.slfm.core.HarnessKt")
    args(rootProject.file("../tests/golden").absolutePath)
}

tasks.named("check") { dependsOn(goldenTest) }
